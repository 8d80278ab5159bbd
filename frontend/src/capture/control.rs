//! The Control tab's mapping table (element id → `/sdapi/v1/control` field), its units, the
//! IP adapters, the processor settings, and the selected script (every tab).
//!
//! Facts of this SD.Next snapshot (`058a7f0`, read from its code and checked on the kit):
//! - Generate sends the tab's fields in the order of `control_run()`'s parameters; the API's
//!   request model is built from the same signature, so the API names are those parameter
//!   names (`batch_count`, `width_before`, `hr_sampler_index`, …), plus `sampler_name`.
//! - The units are not part of Generate's inputs: SD.Next keeps them server side, updated by
//!   each widget's change event. Only the units of the selected "Control Type" tab run
//!   (Generate sends that tab's name as `unit_type`); every type tab repeats the ids
//!   `control_unit-<k>-*`, so they are read inside that tab.
//! - The API takes the input image in a unit's `image` (`inputs` is typed as a PIL image and
//!   answers 422 to base64), so each active unit without its own image gets the shared input.

use scheduler_api::field;
use serde_json::{Map, Value, json};

use super::{CaptureError, Kind, Snapshot, convert, image_of};

/// One row of the Control table: locator → API field.
#[derive(Debug, Clone, Copy)]
pub struct ControlField {
    /// Element id (or `container/id`).
    pub id: &'static str,
    /// The `/sdapi/v1/control` field.
    pub api: &'static str,
    /// How to convert it.
    pub kind: Kind,
}

const fn c(id: &'static str, api: &'static str, kind: Kind) -> ControlField {
    ControlField { id, api, kind }
}

use Kind::*;

/// SD.Next's latent-correction modes (`hdr_mode` index).
const HDR: Kind = Index(super::HDR_MODES);

/// THE Control mapping table: every Control field the API takes, by its element id.
pub const CONTROL_FIELDS: &[ControlField] = &[
    c("control_input_type", "input_type", Radio),
    c("control_prompt", "prompt", Text),
    c("control_neg_prompt", "negative_prompt", Text),
    c("control_styles", "styles", Tokens),
    c("control_steps", "steps", Int),
    c("control_sampling", "sampler_name", Choice),
    c("control_seed", "seed", Int),
    c("control_subseed", "subseed", Int),
    c("control_subseed_strength", "subseed_strength", Float),
    c("control_seed_resize_from_h", "seed_resize_from_h", Int),
    c("control_seed_resize_from_w", "seed_resize_from_w", Int),
    // Guidance as the page holds it (the tab's defaults are -1: "the model's default").
    c("control_guider", "guidance_name", Choice),
    c("control_guidance_scale", "guidance_scale", Float),
    c("control_guidance_rescale", "guidance_rescale", Float),
    c("control_guidance_start", "guidance_start", Float),
    c("control_guidance_stop", "guidance_stop", Float),
    c("control_cfg_scale", "cfg_scale", Float),
    c("control_clip_skip", "clip_skip", Float),
    c("control_cfg_image", "cfg_image", Float),
    c("control_image_cfg_rescale", "cfg_rescale", Float),
    c("control_cfg_true", "cfg_true", Float),
    c("control_cfg_adaptive", "cfg_adaptive", Float),
    c("control_cfg_end", "cfg_end", Float),
    c("control_vae_type", "vae_type", Choice),
    c("control_tiling", "tiling", Bool),
    c("control_hidiffusion", "hidiffusion", Bool),
    // Detailer.
    c("control_detailer_enabled", "detailer_enabled", Bool),
    c("control_detailer_prompt", "detailer_prompt", Text),
    c("control_detailer_negative", "detailer_negative", Text),
    c("control_detailer_steps", "detailer_steps", Int),
    c("control_detailer_strength", "detailer_strength", Float),
    c("control_detailer_resolution", "detailer_resolution", Int),
    c("control_detailers", "detailer_models", Tokens),
    c("control_detailer_classes", "detailer_classes", Text),
    c("control_detailer_seg", "detailer_segmentation", Bool),
    c("control_detailer_save", "detailer_include_detections", Bool),
    c("control_detailer_merge", "detailer_merge", Bool),
    c("control_detailer_sort", "detailer_sort", Bool),
    c("control_detailer_max", "detailer_max", Int),
    c("control_detailer_padding", "detailer_padding", Int),
    c("control_detailer_blur", "detailer_blur", Int),
    c("control_detailer_conf", "detailer_conf", Float),
    c("control_detailer_iou", "detailer_iou", Float),
    c("control_detailer_min_size", "detailer_min_size", Float),
    c("control_detailer_max_size", "detailer_max_size", Float),
    c("control_detailer_renoise", "detailer_sigma_adjust", Float),
    c(
        "control_detailer_renoise_end",
        "detailer_sigma_adjust_max",
        Float,
    ),
    // Latent corrections.
    c("control_hdr_mode", "hdr_mode", HDR),
    c("control_hdr_brightness", "hdr_brightness", Float),
    c("control_hdr_color", "hdr_color", Float),
    c("control_hdr_sharpen", "hdr_sharpen", Float),
    c("control_hdr_clamp", "hdr_clamp", Bool),
    c("control_hdr_boundary", "hdr_boundary", Float),
    c("control_hdr_threshold", "hdr_threshold", Float),
    c("control_hdr_maximize", "hdr_maximize", Bool),
    c("control_hdr_max_center", "hdr_max_center", Float),
    c("control_hdr_max_boundary", "hdr_max_boundary", Float),
    c("control_hdr_color_picker", "hdr_color_picker", Color),
    c("control_hdr_tint_ratio", "hdr_tint_ratio", Float),
    c("control_hdr_apply_hires", "hdr_apply_hires", Bool),
    // Colour grading.
    c("control_grading_brightness", "grading_brightness", Float),
    c("control_grading_contrast", "grading_contrast", Float),
    c("control_grading_saturation", "grading_saturation", Float),
    c("control_grading_hue", "grading_hue", Float),
    c("control_grading_gamma", "grading_gamma", Float),
    c("control_grading_sharpness", "grading_sharpness", Float),
    c("control_grading_color_temp", "grading_color_temp", Float),
    c("control_grading_shadows", "grading_shadows", Float),
    c("control_grading_midtones", "grading_midtones", Float),
    c("control_grading_highlights", "grading_highlights", Float),
    c("control_grading_clahe_clip", "grading_clahe_clip", Float),
    c("control_grading_clahe_grid", "grading_clahe_grid", Int),
    c(
        "control_grading_shadows_tint",
        "grading_shadows_tint",
        Color,
    ),
    c(
        "control_grading_highlights_tint",
        "grading_highlights_tint",
        Color,
    ),
    c(
        "control_grading_split_tone_balance",
        "grading_split_tone_balance",
        Float,
    ),
    c("control_grading_vignette", "grading_vignette", Float),
    c("control_grading_grain", "grading_grain", Float),
    c(
        "control_grading_lut_strength",
        "grading_lut_strength",
        Float,
    ),
    // Size: before (the generation size), after, mask.
    c(
        "control_before_resize_mode",
        "resize_mode_before",
        ResizeMode,
    ),
    c("control_before_resize_name", "resize_name_before", Choice),
    c(
        "control_before_resize_context",
        "resize_context_before",
        Choice,
    ),
    c("control_before_resize_width", "width_before", Int),
    c("control_before_resize_height", "height_before", Int),
    c("control_before_scale", "scale_by_before", Float),
    c("control_after_resize_mode", "resize_mode_after", ResizeMode),
    c("control_after_resize_name", "resize_name_after", Choice),
    c(
        "control_after_resize_context",
        "resize_context_after",
        Choice,
    ),
    c("control_after_resize_width", "width_after", Int),
    c("control_after_resize_height", "height_after", Int),
    c("control_after_scale", "scale_by_after", Float),
    c("control_mask_resize_mode", "resize_mode_mask", ResizeMode),
    c("control_mask_resize_name", "resize_name_mask", Choice),
    c("control_mask_resize_context", "resize_context_mask", Choice),
    c("control_mask_resize_width", "width_mask", Int),
    c("control_mask_resize_height", "height_mask", Int),
    c("control_mask_scale", "scale_by_mask", Float),
    // Input.
    c(
        "control_input_denoising_strength",
        "denoising_strength",
        Float,
    ),
    c("control_input_skip_processing", "skip_processing", Bool),
    c("control_batch_count", "batch_count", Int),
    c("control_batch_size", "batch_size", Int),
    // Hires / refine.
    c("control_enable_hr", "enable_hr", Bool),
    c("control_sampling_alt", "hr_sampler_index", PageIndex),
    c("control_denoising_strength", "hr_denoising_strength", Float),
    c("control_resize_mode", "hr_resize_mode", ResizeMode),
    c("control_resize_context", "hr_resize_context", Choice),
    c("control_resize_name", "hr_upscaler", Choice),
    c("control_hr_force", "hr_force", Bool),
    c("control_steps_alt", "hr_second_pass_steps", Int),
    c("control_scale", "hr_scale", Float),
    c("control_resize_width", "hr_resize_x", Int),
    c("control_resize_height", "hr_resize_y", Int),
    c("control_refiner_steps", "refiner_steps", Int),
    c("control_refiner_start", "refiner_start", Float),
    c("control_refiner_prompt", "refiner_prompt", Text),
    c("control_refiner_neg_prompt", "refiner_negative", Text),
    // The input image and the mask drawn on it (Kanvas), and the selected Control type.
    c(KANVAS, "@input", Image),
    c(CONTROL_TYPE, "unit_type", Radio),
];

/// Control fields the table leaves out, and why (named in the closing note).
pub const CONTROL_LEFT_OUT: &[(&str, &str)] = &[
    (
        "selected_scale_tab_before/_after/_mask",
        "gr.State set by tab clicks, not in the page; SD.Next derives it from name and scale",
    ),
    (
        "control_grading_lut_file",
        "a file upload the API only takes as a server path",
    ),
    (
        "control_override_settings (extra)",
        "'key: value' texts; the API's `extra` is typed per option",
    ),
    (
        "control_video_* (video_skip_frames, video_type, video_duration, video_loop, video_pad, video_interpolate)",
        "the Video input and output; out of scope (issue 6)",
    ),
    (
        "Control input '2nd: Separate image' init image",
        "a second Kanvas the page does not expose; the input image is used",
    ),
    ("control_unit-<k>-tile (CN Tiles)", "no API field"),
    (
        "Mask tools of the Control input (Mask only/invert/blur/erode/dilate/auto)",
        "server-side masking state, not a request field",
    ),
    (
        "Control settings > Global (max units, tiling options, hires use control, keep aspect ratio, offload/unload processor)",
        "SD.Next options, not request fields",
    ),
];

/// The Control tab's Kanvas input: `{image, mask}`.
pub const KANVAS: &str = "@kanvas";
/// The selected Control Type tab (index into [`UNIT_TYPES`]).
pub const CONTROL_TYPE: &str = "@control_type";
/// The selected script and its labelled arguments.
pub const SCRIPT: &str = "@script";
/// The IP adapter group's labelled arguments.
pub const IP: &str = "@ip";

/// The Control Type tabs, in page order, as `unit_type` words.
pub const UNIT_TYPES: &[&str] = &["controlnet", "t2i adapter", "xs", "lite", "reference"];
/// The id prefix of each type's unit image (`<prefix>_unit-<k>-override`).
pub const UNIT_IMAGE_PREFIX: &[&str] =
    &["controlnet", "adapter", "controlnetxs", "lite", "reference"];
/// Units per type the page offers (`control_max_units`, SD.Next's default).
pub const MAX_UNITS: usize = 4;

/// One unit field: `control_unit-<k>-<suffix>` → unit API field.
#[derive(Debug, Clone, Copy)]
pub struct UnitField {
    /// The id after `control_unit-<k>-`.
    pub suffix: &'static str,
    /// The unit (`ItemControl`) field.
    pub api: &'static str,
    /// How to convert it.
    pub kind: Kind,
}

/// The unit table.
pub const UNIT_FIELDS: &[UnitField] = &[
    UnitField {
        suffix: "enabled",
        api: "@enabled",
        kind: Bool,
    },
    UnitField {
        suffix: "process_name",
        api: "process",
        kind: Choice,
    },
    UnitField {
        suffix: "model_name",
        api: "model",
        kind: Choice,
    },
    UnitField {
        suffix: "mode",
        api: "mode",
        kind: Choice,
    },
    UnitField {
        suffix: "strength",
        api: "strength",
        kind: Float,
    },
    UnitField {
        suffix: "start",
        api: "start",
        kind: Float,
    },
    UnitField {
        suffix: "end",
        api: "end",
        kind: Float,
    },
];

/// The shared controls of a Control Type tab (no ids: read by label in that tab) → unit field.
pub const UNIT_EXTRAS: &[(&str, &str, &str, Kind)] = &[
    ("controlnet", "Guess mode", "guess", Bool),
    ("t2i adapter", "Control factor", "factor", Float),
    ("reference", "Reference context", "attention", Choice),
    ("reference", "Style fidelity", "fidelity", Float),
    ("reference", "Reference query weight", "query_weight", Float),
    ("reference", "Reference adain weight", "adain_weight", Float),
];

/// Processor settings (Control settings, one accordion per processor; no ids): (accordion
/// title, setting label, processor name, `process_params` key) — SD.Next's own mapping
/// (`processors.update_settings`).
pub const PROCESSOR_SETTINGS: &[(&str, &str, &str, &str, Kind)] = &[
    ("HED", "Scribble", "HED", "scribble", Bool),
    (
        "Midas depth",
        "Background threshold",
        "Midas Depth Hybrid",
        "bg_th",
        Float,
    ),
    (
        "Midas depth",
        "Depth and normal",
        "Midas Depth Hybrid",
        "depth_and_normal",
        Bool,
    ),
    ("MLSD", "Score threshold", "MLSD", "thr_v", Float),
    ("MLSD", "Distance threshold", "MLSD", "thr_d", Float),
    ("OpenBody", "Body", "OpenPose", "include_body", Bool),
    ("OpenBody", "Hands", "OpenPose", "include_hand", Bool),
    ("OpenBody", "Face", "OpenPose", "include_face", Bool),
    ("PidiNet", "Scribble", "PidiNet", "scribble", Bool),
    ("PidiNet", "Apply filter", "PidiNet", "apply_filter", Bool),
    ("LineArt", "Coarse", "LineArt Realistic", "coarse", Bool),
    ("Leres Depth", "Boost", "Leres Depth", "boost", Bool),
    (
        "Leres Depth",
        "Near threshold",
        "Leres Depth",
        "thr_a",
        Float,
    ),
    (
        "Leres Depth",
        "Depth threshold",
        "Leres Depth",
        "thr_b",
        Float,
    ),
    (
        "MediaPipe Face",
        "Max faces",
        "MediaPipe Face (Legacy)",
        "max_faces",
        Int,
    ),
    (
        "MediaPipe Face",
        "Face confidence",
        "MediaPipe Face (Legacy)",
        "min_confidence",
        Float,
    ),
    ("Canny", "Low threshold", "Canny", "low_threshold", Int),
    ("Canny", "High threshold", "Canny", "high_threshold", Int),
    (
        "DWPose",
        "Pose confidence",
        "DWPose (Legacy)",
        "min_confidence",
        Float,
    ),
    ("Edge", "Parameter free", "Edge", "pf", Bool),
    ("Edge", "Edge mode", "Edge", "mode", Choice),
    (
        "Zoe Depth",
        "Gamma corrected",
        "Zoe Depth",
        "gamma_corrected",
        Bool,
    ),
    (
        "Marigold Depth",
        "Color map",
        "Marigold Depth",
        "color_map",
        Choice,
    ),
];

/// The snapshot key of unit `k`'s field.
pub fn unit_key(k: usize, field: &str) -> String {
    format!("@unit/{k}/{field}")
}

/// The snapshot key of a type's shared control.
pub fn extra_key(label: &str) -> String {
    format!("@unit_extra/{label}")
}

/// The snapshot key of a processor setting.
pub fn proc_key(accordion: &str, label: &str) -> String {
    format!("@proc/{accordion}/{label}")
}

fn is_none(v: Option<&Value>) -> bool {
    v.and_then(Value::as_str)
        .is_none_or(|s| s.trim().is_empty() || s == "None")
}

/// The Control request's fields (without the host-only ones).
pub fn control_params(snapshot: &Snapshot) -> Result<Map<String, Value>, CaptureError> {
    let mut params = Map::new();
    for row in CONTROL_FIELDS {
        if row.api.starts_with('@') || row.id.starts_with('@') {
            continue;
        }
        let Some(val) = snapshot.get(row.id).and_then(|raw| convert(row.kind, raw)) else {
            continue;
        };
        params.insert(row.api.to_owned(), val);
    }
    let (input, mask) = match snapshot.get(KANVAS) {
        Some(Value::Object(o)) => (image_of(o.get("image")), image_of(o.get("mask"))),
        other => (image_of(other), None),
    };
    if let Some(m) = mask {
        params.insert("mask".into(), Value::String(m.to_owned()));
    }
    let type_idx = snapshot
        .get(CONTROL_TYPE)
        .and_then(Value::as_u64)
        .unwrap_or(0) as usize;
    let unit_type = UNIT_TYPES.get(type_idx).copied().unwrap_or("controlnet");
    params.insert("unit_type".into(), Value::String(unit_type.to_owned()));
    let units = units(snapshot, unit_type, input)?;
    // "1st: Same as control": the input is also the init image (the API takes it as
    // `init_control`, base64; its `inits` are typed as images).
    if params.get("input_type").and_then(Value::as_i64) == Some(1)
        && let Some(i) = input
    {
        params.insert("init_control".into(), json!([i]));
    }
    // No unit: the input alone makes an img2img-like generation; SD.Next's API takes it as
    // the init image.
    if units.is_empty()
        && let Some(i) = input
    {
        params.insert("init_control".into(), json!([i]));
    }
    params.insert("control".into(), Value::Array(units));
    if let Some(ip) = ip_adapters(snapshot) {
        params.insert("ip_adapter".into(), ip);
    }
    Ok(params)
}

fn units(
    snapshot: &Snapshot,
    unit_type: &str,
    input: Option<&str>,
) -> Result<Vec<Value>, CaptureError> {
    let mut out = Vec::new();
    for k in 0..MAX_UNITS {
        let get = |f: &str| snapshot.get(&unit_key(k, f));
        if get("enabled").and_then(Value::as_bool) != Some(true) {
            continue;
        }
        let (model, process) = (get("model_name"), get("process_name"));
        if unit_type != "reference" && is_none(model) && is_none(process) {
            continue;
        }
        let mut u = Map::new();
        u.insert("unit_type".into(), Value::String(unit_type.to_owned()));
        for fld in UNIT_FIELDS {
            if fld.api.starts_with('@') {
                continue;
            }
            if let Some(v) = get(fld.suffix).and_then(|raw| convert(fld.kind, raw)) {
                let v = match (fld.api, &v) {
                    ("process" | "model", Value::String(s)) if s == "None" => {
                        Value::String(String::new())
                    }
                    _ => v,
                };
                u.insert(fld.api.to_owned(), v);
            }
        }
        for (ty, label, api, kind) in UNIT_EXTRAS {
            if *ty == unit_type
                && let Some(v) = snapshot
                    .get(&extra_key(label))
                    .and_then(|raw| convert(*kind, raw))
            {
                u.insert((*api).to_owned(), v);
            }
        }
        if let Some(p) = u.get("process").and_then(Value::as_str).map(str::to_owned) {
            let mut pp = Map::new();
            for (acc, label, proc_name, key, kind) in PROCESSOR_SETTINGS {
                if *proc_name == p
                    && let Some(v) = snapshot
                        .get(&proc_key(acc, label))
                        .and_then(|raw| convert(*kind, raw))
                {
                    pp.insert((*key).to_owned(), v);
                }
            }
            if !pp.is_empty() {
                u.insert("process_params".into(), Value::Object(pp));
            }
        }
        let image = image_of(get("image")).or(input);
        match image {
            Some(i) => {
                u.insert("image".into(), Value::String(i.to_owned()));
            }
            None => return Err(CaptureError::UnitWithoutImage(k)),
        }
        out.push(Value::Object(u));
    }
    Ok(out)
}

/// The IP adapter list from the group's labelled arguments (`Active IP adapters`, then four
/// of each of `Adapter`, `Strength`, `Input images`, `Crop to portrait`, `Start`, `End`,
/// `Input masks`): adapter k is the k-th argument of each label. Adapters without images or
/// named "None" are left out, as SD.Next does.
pub fn ip_adapters(snapshot: &Snapshot) -> Option<Value> {
    let args = snapshot.get(IP)?.get("args")?.as_array()?;
    let nth = |label: &str, k: usize| -> Option<&Value> {
        args.iter()
            .filter(|a| a.get("label").and_then(Value::as_str) == Some(label))
            .nth(k)
            .and_then(|a| a.get("value"))
    };
    let active = nth("Active IP adapters", 0)
        .and_then(|v| convert(Int, v))
        .and_then(|v| v.as_u64())
        .unwrap_or(0) as usize;
    let images = |v: Option<&Value>| -> Vec<Value> {
        match v {
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(|x| match x {
                    Value::String(s) if s.starts_with("data:image/") => Some(x.clone()),
                    Value::Object(o) => o
                        .get("data")
                        .filter(|d| d.as_str().is_some_and(|s| s.starts_with("data:image/")))
                        .cloned(),
                    _ => None,
                })
                .collect(),
            _ => vec![],
        }
    };
    let mut out = Vec::new();
    for k in 0..active {
        let adapter = nth("Adapter", k).and_then(Value::as_str).unwrap_or("None");
        let imgs = images(nth("Input images", k));
        if adapter == "None" || imgs.is_empty() {
            continue;
        }
        let mut a = Map::new();
        a.insert("adapter".into(), Value::String(adapter.to_owned()));
        let num = |label: &str, kind: Kind| nth(label, k).and_then(|v| convert(kind, v));
        if let Some(v) = num("Strength", Float) {
            a.insert("scale".into(), v);
        }
        if let Some(v) = num("Start", Float) {
            a.insert("start".into(), v);
        }
        if let Some(v) = num("End", Float) {
            a.insert("end".into(), v);
        }
        if let Some(v) = num("Crop to portrait", Bool) {
            a.insert("crop".into(), v);
        }
        a.insert("images".into(), Value::Array(imgs));
        let masks = images(nth("Input masks", k));
        if !masks.is_empty() {
            a.insert("masks".into(), Value::Array(masks));
        }
        out.push(Value::Object(a));
    }
    (!out.is_empty()).then_some(Value::Array(out))
}

/// `script_name`, `script_args` and [`field::SCRIPT_ARG_LABELS`] from the selected script.
pub fn script_fields(snapshot: &Snapshot, params: &mut Map<String, Value>) {
    let Some(s) = snapshot.get(SCRIPT) else {
        return;
    };
    let Some(title) = s.get("title").and_then(Value::as_str) else {
        return;
    };
    if title.is_empty() || title == "None" {
        return;
    }
    let args = s
        .get("args")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    params.insert("script_name".into(), Value::String(title.to_owned()));
    params.insert(
        "script_args".into(),
        Value::Array(
            args.iter()
                .map(|a| a.get("value").cloned().unwrap_or(Value::Null))
                .collect(),
        ),
    );
    params.insert(
        field::SCRIPT_ARG_LABELS.into(),
        Value::Array(
            args.iter()
                .map(|a| a.get("label").cloned().unwrap_or(Value::Null))
                .collect(),
        ),
    );
}
