//! Capture: SD.Next's form values, read by element id, mapped to API request fields.
//!
//! The DOM side (wasm only, `dom`) reads a [`Snapshot`]: locator → raw value as the page
//! shows it (strings for text boxes, sliders, numbers and dropdowns; booleans for checkboxes;
//! string arrays for multiselects; numbers for radio groups (the checked one's index); data URLs
//! for images). Everything else here is pure Rust over that snapshot, driven by the tables —
//! [`FIELDS`] for txt2img/img2img, [`control::CONTROL_FIELDS`] and [`control::UNIT_FIELDS`]
//! for the Control tab — so it is unit-tested natively.
//!
//! A locator is an element id, or `container/id` for an id SD.Next repeats: the hires
//! ("Refine") section reuses img2img's resize ids, and every Control Type tab reuses the unit
//! ids. A plain id never matches inside a `*_refine_accordion`.
//!
//! Keys starting with `@` are page facts read by structure rather than by one id:
//! `@img2img_mode` (the selected img2img mode tab: 0 Image, 1 Inpaint, 2 Sketch, 3 Composite,
//! 4 Upload), `@img2img_input` (`{image, mask?}` of that mode), `@kanvas` (the Control tab's
//! Kanvas `{image, mask}`), `@control_type` (the selected Control Type tab), `@unit/<k>/<field>`
//! (unit k of that type), `@unit_extra/<label>` (the type's shared controls), `@proc/<processor>/<label>`
//! (processor settings), `@script` (`{title, args: [{label, value}]}`) and `@ip` (the IP adapter
//! group's labelled arguments).
//!
//! Rules from the measured SD.Next behaviour (reference sdnext-api.md §7):
//! - CFG `-1` (model default) is sent as is; so is CFG rescale `-1` (`cfg_rescale`).
//! - img2img width/height `0` (use the image size × scale) is sent as is.
//! - Batch count → `n_iter` (`batch_count` on Control); the sampler is sent as shown.
//! - `styles` are the tokens of the multiselect; `cfg_end`, `subseed`, `subseed_strength` are sent.
//! - The checkpoint comes from the quicksettings (`#setting_sd_model_checkpoint`) unless the
//!   extension's dropdown says otherwise; it becomes the host-only field `checkpoint`.

#[cfg(all(target_arch = "wasm32", feature = "content"))]
pub mod bridge;
pub mod control;
#[cfg(all(target_arch = "wasm32", feature = "content"))]
pub mod dom;

use scheduler_api::{EnqueueRequest, TaskType, checkpoint_in_folder, checkpoint_segments};
use serde_json::{Map, Number, Value, json};
use std::collections::BTreeMap;

/// Locator → raw value as read from the page.
pub type Snapshot = BTreeMap<String, Value>;

/// The generation tab the Enqueue button belongs to; in messages, its prefix (`txt2img`,
/// `img2img`, `control`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tab {
    /// Text → image.
    Txt2img,
    /// Image → image.
    Img2img,
    /// SD.Next's Control tab: a `control` task (`/sdapi/v1/control`).
    Control,
}

impl Tab {
    /// All tabs that get a button.
    pub const ALL: [Tab; 3] = [Tab::Txt2img, Tab::Img2img, Tab::Control];

    /// The element-id prefix (`txt2img`, `img2img`, `control`).
    pub fn prefix(self) -> &'static str {
        match self {
            Tab::Txt2img => "txt2img",
            Tab::Img2img => "img2img",
            Tab::Control => "control",
        }
    }

    /// Parses a prefix.
    pub fn parse(s: &str) -> Option<Tab> {
        Tab::ALL.into_iter().find(|t| t.prefix() == s)
    }

    /// The tab a task type is filled into by "Send to".
    pub fn of(ty: TaskType) -> Tab {
        match ty {
            TaskType::Txt2img => Tab::Txt2img,
            TaskType::Img2img => Tab::Img2img,
            TaskType::Control => Tab::Control,
        }
    }
}

/// How a raw value becomes a JSON API value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Free text (`textarea` / text `input`), sent as a string (empty allowed).
    Text,
    /// A dropdown's shown choice, sent as a string; empty → field left out.
    Choice,
    /// Whole number (sliders / number boxes); empty → left out.
    Int,
    /// Real number; empty → left out.
    Float,
    /// Checkbox.
    Bool,
    /// Multiselect tokens → array of strings.
    Tokens,
    /// An image as a data URL (string); absent → left out.
    Image,
    /// An image → one-element array (`init_images`).
    ImageList,
    /// Dropdown of SD.Next resize modes, sent as its index in [`RESIZE_MODES`].
    ResizeMode,
    /// A dropdown with a fixed list in SD.Next's code, sent as the index of the shown choice.
    Index(&'static [&'static str]),
    /// A dropdown sent as the index of the shown choice among the choices the page holds
    /// (raw: `{"value", "choices"}`; without the page's choices the field is left out).
    PageIndex,
    /// A radio group, sent as the index of the checked choice (read from the page's order).
    Radio,
    /// A radio group whose index is a flag (0 → false, otherwise true).
    RadioBool,
    /// A colour picker (`#rrggbb`).
    Color,
}

/// Where a mapped value goes in the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// A field of the SD.Next request (`params`).
    Param(&'static str),
    /// The host-only `checkpoint` (quicksettings value, "Current checkpoint").
    Checkpoint,
    /// The host-only `vae`.
    Vae,
}

/// One row of the txt2img/img2img mapping table: an API target and the locator on each tab.
#[derive(Debug, Clone, Copy)]
pub struct Field {
    /// Where the value goes.
    pub target: Target,
    /// How to convert it.
    pub kind: Kind,
    /// Locator on the txt2img tab.
    pub txt2img: Option<&'static str>,
    /// Locator on the img2img tab.
    pub img2img: Option<&'static str>,
}

impl Field {
    /// The locator on `tab` (Control has its own table, [`control::CONTROL_FIELDS`]).
    pub fn id(&self, tab: Tab) -> Option<&'static str> {
        match tab {
            Tab::Txt2img => self.txt2img,
            Tab::Img2img => self.img2img,
            Tab::Control => None,
        }
    }

    /// The API field name (`checkpoint` / `vae` for the host-only ones).
    pub fn api_name(&self) -> &'static str {
        match self.target {
            Target::Param(p) => p,
            Target::Checkpoint => "checkpoint",
            Target::Vae => "vae",
        }
    }
}

const fn f(target: Target, kind: Kind, t: Option<&'static str>, i: Option<&'static str>) -> Field {
    Field {
        target,
        kind,
        txt2img: t,
        img2img: i,
    }
}

/// Both tabs: `<tab>_<suffix>` on each.
macro_rules! both {
    ($api:literal, $kind:expr, $suffix:literal) => {
        f(
            P($api),
            $kind,
            Some(concat!("txt2img_", $suffix)),
            Some(concat!("img2img_", $suffix)),
        )
    };
}

/// Both tabs, inside the "Refine" (hires) accordion.
macro_rules! refine {
    ($api:literal, $kind:expr, $t:literal, $i:literal) => {
        f(
            P($api),
            $kind,
            Some(concat!("txt2img_refine_accordion/", $t)),
            Some(concat!("img2img_refine_accordion/", $i)),
        )
    };
}

use Kind::*;
use Target::Param as P;

/// Ids shared by every tab (quicksettings).
pub const CHECKPOINT_ID: &str = "setting_sd_model_checkpoint";
/// The quicksettings VAE dropdown.
pub const VAE_ID: &str = "setting_sd_vae";
/// Inpaint-upload mask image.
pub const MASK_ID: &str = "img_inpaint_mask";
/// img2img's mask alpha (the Composite mode's mask strength; the API has no such field).
pub const MASK_ALPHA_ID: &str = "img2img_mask_alpha";
/// The img2img input of the selected mode (`{image, mask?}`).
pub const IMG2IMG_INPUT: &str = "@img2img_input";
/// The selected img2img mode tab.
pub const IMG2IMG_MODE: &str = "@img2img_mode";
/// SD.Next's latent-correction modes (`hdr_mode` index).
pub const HDR_MODES: &[&str] = &["Relative values", "Absolute values"];

/// THE txt2img/img2img mapping table: locator (per tab) → API field.
pub const FIELDS: &[Field] = &[
    both!("prompt", Text, "prompt"),
    both!("negative_prompt", Text, "neg_prompt"),
    both!("styles", Tokens, "styles"),
    both!("steps", Int, "steps"),
    both!("sampler_name", Choice, "sampling"),
    // Guidance (the legacy CFG sliders and the modular guider).
    both!("cfg_scale", Float, "cfg_scale"),
    both!("cfg_end", Float, "cfg_end"),
    both!("cfg_rescale", Float, "image_cfg_rescale"),
    both!("cfg_image", Float, "cfg_image"),
    both!("cfg_true", Float, "cfg_true"),
    both!("cfg_adaptive", Float, "cfg_adaptive"),
    both!("guidance_name", Choice, "guider"),
    both!("guidance_scale", Float, "guidance_scale"),
    both!("guidance_rescale", Float, "guidance_rescale"),
    both!("guidance_start", Float, "guidance_start"),
    both!("guidance_stop", Float, "guidance_stop"),
    // Size, seed, batch.
    both!("width", Int, "width"),
    both!("height", Int, "height"),
    both!("seed", Int, "seed"),
    both!("subseed", Int, "subseed"),
    both!("subseed_strength", Float, "subseed_strength"),
    both!("seed_resize_from_w", Int, "seed_resize_from_w"),
    both!("seed_resize_from_h", Int, "seed_resize_from_h"),
    both!("n_iter", Int, "batch_count"),
    both!("batch_size", Int, "batch_size"),
    // Advanced.
    both!("clip_skip", Float, "clip_skip"),
    both!("vae_type", Choice, "vae_type"),
    both!("tiling", Bool, "tiling"),
    both!("hidiffusion", Bool, "hidiffusion"),
    // Detailer.
    both!("detailer_enabled", Bool, "detailer_enabled"),
    both!("detailer_prompt", Text, "detailer_prompt"),
    both!("detailer_negative", Text, "detailer_negative"),
    both!("detailer_steps", Int, "detailer_steps"),
    both!("detailer_strength", Float, "detailer_strength"),
    both!("detailer_resolution", Int, "detailer_resolution"),
    // The Detailer's other settings are global options in the page (saved as they change,
    // read when a job runs); the task keeps the values shown at Enqueue as request fields.
    both!("detailer_models", Tokens, "detailers"),
    both!("detailer_classes", Text, "detailer_classes"),
    both!("detailer_segmentation", Bool, "detailer_seg"),
    both!("detailer_include_detections", Bool, "detailer_save"),
    both!("detailer_merge", Bool, "detailer_merge"),
    both!("detailer_sort", Bool, "detailer_sort"),
    both!("detailer_max", Int, "detailer_max"),
    both!("detailer_padding", Int, "detailer_padding"),
    both!("detailer_blur", Int, "detailer_blur"),
    both!("detailer_conf", Float, "detailer_conf"),
    both!("detailer_iou", Float, "detailer_iou"),
    both!("detailer_min_size", Float, "detailer_min_size"),
    both!("detailer_max_size", Float, "detailer_max_size"),
    both!("detailer_sigma_adjust", Float, "detailer_renoise"),
    both!("detailer_sigma_adjust_max", Float, "detailer_renoise_end"),
    // Latent corrections (HDR).
    both!("hdr_mode", Index(HDR_MODES), "hdr_mode"),
    both!("hdr_brightness", Float, "hdr_brightness"),
    both!("hdr_color", Float, "hdr_color"),
    both!("hdr_sharpen", Float, "hdr_sharpen"),
    both!("hdr_clamp", Bool, "hdr_clamp"),
    both!("hdr_boundary", Float, "hdr_boundary"),
    both!("hdr_threshold", Float, "hdr_threshold"),
    both!("hdr_maximize", Bool, "hdr_maximize"),
    both!("hdr_max_center", Float, "hdr_max_center"),
    both!("hdr_max_boundary", Float, "hdr_max_boundary"),
    both!("hdr_color_picker", Color, "hdr_color_picker"),
    both!("hdr_tint_ratio", Float, "hdr_tint_ratio"),
    both!("hdr_apply_hires", Bool, "hdr_apply_hires"),
    // Colour grading.
    both!("grading_brightness", Float, "grading_brightness"),
    both!("grading_contrast", Float, "grading_contrast"),
    both!("grading_saturation", Float, "grading_saturation"),
    both!("grading_hue", Float, "grading_hue"),
    both!("grading_gamma", Float, "grading_gamma"),
    both!("grading_sharpness", Float, "grading_sharpness"),
    both!("grading_color_temp", Float, "grading_color_temp"),
    both!("grading_shadows", Float, "grading_shadows"),
    both!("grading_midtones", Float, "grading_midtones"),
    both!("grading_highlights", Float, "grading_highlights"),
    both!("grading_clahe_clip", Float, "grading_clahe_clip"),
    both!("grading_clahe_grid", Int, "grading_clahe_grid"),
    both!("grading_shadows_tint", Color, "grading_shadows_tint"),
    both!("grading_highlights_tint", Color, "grading_highlights_tint"),
    both!(
        "grading_split_tone_balance",
        Float,
        "grading_split_tone_balance"
    ),
    both!("grading_vignette", Float, "grading_vignette"),
    both!("grading_grain", Float, "grading_grain"),
    both!("grading_lut_strength", Float, "grading_lut_strength"),
    // Hires / second pass ("Refine" accordion). txt2img's hires strength is its
    // `denoising_strength`; img2img has both (main and hires, under the same id).
    refine!("enable_hr", Bool, "txt2img_enable_hr", "img2img_enable_hr"),
    refine!("hr_force", Bool, "txt2img_hr_force", "img2img_hr_force"),
    refine!(
        "hr_resize_mode",
        ResizeMode,
        "txt2img_resize_mode",
        "img2img_resize_mode"
    ),
    refine!(
        "hr_resize_context",
        Choice,
        "txt2img_resize_context",
        "img2img_resize_context"
    ),
    refine!(
        "hr_upscaler",
        Choice,
        "txt2img_resize_name",
        "img2img_resize_name"
    ),
    refine!("hr_scale", Float, "txt2img_scale", "img2img_scale"),
    refine!("hr_resize_x", Int, "txt2img_resize_width", "img2img_width"),
    refine!(
        "hr_resize_y",
        Int,
        "txt2img_resize_height",
        "img2img_height"
    ),
    refine!(
        "hr_second_pass_steps",
        Int,
        "txt2img_steps_alt",
        "img2img_steps_alt"
    ),
    refine!(
        "hr_sampler_name",
        Choice,
        "txt2img_sampling_alt",
        "img2img_sampling_alt"
    ),
    f(
        P("denoising_strength"),
        Float,
        Some("txt2img_refine_accordion/txt2img_denoising_strength"),
        Some("img2img_denoising_strength"),
    ),
    f(
        P("hr_denoising_strength"),
        Float,
        None,
        Some("img2img_refine_accordion/img2img_denoising_strength"),
    ),
    // Refiner.
    refine!(
        "refiner_steps",
        Int,
        "txt2img_refiner_steps",
        "img2img_refiner_steps"
    ),
    f(
        P("refiner_start"),
        Float,
        Some("txt2img_refine_accordion/txt2img_refiner_start"),
        Some("img2img_refiner_start"),
    ),
    f(
        P("hr_refiner_start"),
        Float,
        None,
        Some("img2img_refine_accordion/img2img_refiner_start"),
    ),
    refine!(
        "refiner_prompt",
        Text,
        "txt2img_refiner_prompt",
        "img2img_refiner_prompt"
    ),
    refine!(
        "refiner_negative",
        Text,
        "txt2img_refiner_neg_prompt",
        "img2img_refiner_neg_prompt"
    ),
    // img2img only: resize, inpaint settings, the input image and mask.
    f(
        P("resize_mode"),
        ResizeMode,
        None,
        Some("img2img_resize_mode"),
    ),
    f(P("resize_name"), Choice, None, Some("img2img_resize_name")),
    f(
        P("resize_context"),
        Choice,
        None,
        Some("img2img_resize_context"),
    ),
    f(P("scale_by"), Float, None, Some("img2img_scale")),
    f(P("mask_blur"), Int, None, Some("img2img_mask_blur")),
    f(
        P("inpaint_full_res"),
        RadioBool,
        None,
        Some("img2img_inpaint_full_res"),
    ),
    f(
        P("inpaint_full_res_padding"),
        Int,
        None,
        Some("img2img_inpaint_full_res_padding"),
    ),
    f(
        P("inpainting_mask_invert"),
        Radio,
        None,
        Some("img2img_mask_mode"),
    ),
    f(P("init_images"), ImageList, None, Some(IMG2IMG_INPUT)),
    f(P("mask"), Image, None, Some(MASK_ID)),
    // Quicksettings: host-only fields.
    f(
        Target::Checkpoint,
        Choice,
        Some(CHECKPOINT_ID),
        Some(CHECKPOINT_ID),
    ),
    f(Target::Vae, Choice, Some(VAE_ID), Some(VAE_ID)),
];

/// Page fields of txt2img/img2img the table leaves out, and why (for the closing note).
pub const LEFT_OUT: &[(&str, &str)] = &[
    (
        "<tab>_grading_lut_file",
        "a file upload the API only takes as a server path",
    ),
    (
        "<tab>_override_settings",
        "'key: value' texts; the API's override_settings is typed per option",
    ),
    (
        "img2img_mask_alpha",
        "no API field (SD.Next's UI applies it in the Composite mode only); it goes into the \
         infotext with the other mask settings, as Generate writes it",
    ),
    (
        "img2img batch inputs (files, folders)",
        "server-side batches, not one generation",
    ),
];

/// SD.Next's resize-mode choices, in index order.
pub const RESIZE_MODES: &[&str] = &["None", "Fixed", "Crop", "Fill", "Outpaint", "Context aware"];

/// What the extension's checkpoint dropdown offers (its `value` strings: [`Self::to_value`]).
/// Not the wire's choice ([`scheduler_api::CheckpointChoice`], the syntax of an enqueue
/// body's `checkpoint`): `Current` is read from the page when the task is queued, and
/// [`build_request`] turns the others into the wire's value (`Runtime` → none, `All` → `*`,
/// `Folder` → `<folder>/*`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum DropdownChoice {
    /// The quicksettings value at enqueue time.
    #[default]
    Current,
    /// Null: whatever is loaded when the task runs.
    Runtime,
    /// One task per checkpoint (`*`).
    All,
    /// One checkpoint title.
    Title(String),
    /// Every checkpoint in a folder (`<folder>/*`).
    Folder(String),
}

impl DropdownChoice {
    /// The dropdown `value` string of this choice.
    pub fn to_value(&self) -> String {
        match self {
            DropdownChoice::Current => "@current".into(),
            DropdownChoice::Runtime => "@runtime".into(),
            DropdownChoice::All => "@all".into(),
            DropdownChoice::Title(t) => format!("t:{t}"),
            DropdownChoice::Folder(d) => format!("d:{d}"),
        }
    }

    /// Parses a dropdown `value` string.
    pub fn from_value(v: &str) -> DropdownChoice {
        match v {
            "@runtime" => DropdownChoice::Runtime,
            "@all" => DropdownChoice::All,
            _ => {
                if let Some(t) = v.strip_prefix("t:") {
                    DropdownChoice::Title(t.into())
                } else if let Some(d) = v.strip_prefix("d:") {
                    DropdownChoice::Folder(d.into())
                } else {
                    DropdownChoice::Current
                }
            }
        }
    }
}

/// The entries of the custom checkpoint dropdown: (value, label).
/// Current, Runtime, every title, then every folder with its count as `"<dir> (N)"`.
pub fn checkpoint_options(titles: &[String]) -> Vec<(String, String)> {
    let mut out = vec![
        (
            DropdownChoice::Current.to_value(),
            "Current checkpoint".to_owned(),
        ),
        (
            DropdownChoice::Runtime.to_value(),
            "Runtime checkpoint".to_owned(),
        ),
    ];
    for t in titles {
        out.push((DropdownChoice::Title(t.clone()).to_value(), t.clone()));
    }
    for (dir, n) in checkpoint_folders(titles) {
        out.push((
            DropdownChoice::Folder(dir.clone()).to_value(),
            format!("{dir} ({n})"),
        ));
    }
    out
}

/// Every folder (at every depth) that holds checkpoints, with how many, sorted by name.
pub fn checkpoint_folders(titles: &[String]) -> Vec<(String, usize)> {
    let mut dirs: BTreeMap<String, usize> = BTreeMap::new();
    for t in titles {
        let segs = checkpoint_segments(t);
        for depth in 1..segs.len() {
            dirs.entry(segs[..depth].join("/")).or_default();
        }
    }
    for (dir, n) in dirs.iter_mut() {
        *n = titles
            .iter()
            .filter(|t| checkpoint_in_folder(t, dir))
            .count();
    }
    dirs.into_iter().collect()
}

/// Options of one capture.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CaptureOptions {
    /// The dropdown's checkpoint choice.
    pub checkpoint: DropdownChoice,
    /// Task name.
    pub name: Option<String>,
}

/// Why a capture cannot become a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaptureError {
    /// img2img without an input image.
    NoInitImage,
    /// An active Control unit with neither its own image nor the shared input image.
    UnitWithoutImage(usize),
}

impl std::fmt::Display for CaptureError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CaptureError::NoInitImage => f.write_str("img2img needs an input image"),
            CaptureError::UnitWithoutImage(k) => write!(
                f,
                "control unit {} is active but has no image, and the Control input is empty",
                k + 1
            ),
        }
    }
}

/// The task type a tab's capture becomes.
pub fn task_type(tab: Tab) -> TaskType {
    match tab {
        Tab::Txt2img => TaskType::Txt2img,
        Tab::Img2img => TaskType::Img2img,
        Tab::Control => TaskType::Control,
    }
}

pub(crate) fn image_of(v: Option<&Value>) -> Option<&str> {
    match v {
        Some(Value::String(s)) if s.starts_with("data:image/") => Some(s),
        _ => None,
    }
}

fn number(raw: &str, int: bool) -> Option<Value> {
    let t = raw.trim();
    if t.is_empty() {
        return None;
    }
    let x: f64 = t.parse().ok().filter(|x: &f64| x.is_finite())?;
    if int {
        Some(Value::from(x.round() as i64))
    } else {
        // Float fields keep a float type even for whole numbers (CFG 7 → 7.0).
        Number::from_f64(x).map(Value::Number)
    }
}

/// Converts one raw value by kind; `None` leaves the field out.
pub fn convert(kind: Kind, raw: &Value) -> Option<Value> {
    let s = match raw {
        Value::String(s) => Some(s.as_str()),
        _ => None,
    };
    match kind {
        Text => Some(Value::String(s.unwrap_or_default().to_owned())),
        Choice => {
            let v = s?.trim();
            if v.is_empty() {
                None
            } else if v.starts_with('─') {
                Some(Value::String("Default".into()))
            } else {
                Some(Value::String(v.to_owned()))
            }
        }
        Int => match raw {
            Value::Number(n) => n
                .as_i64()
                .map(Value::from)
                .or_else(|| n.as_f64().map(|x| Value::from(x.round() as i64))),
            _ => number(s?, true),
        },
        Float => match raw {
            Value::Number(n) => n.as_f64().and_then(Number::from_f64).map(Value::Number),
            _ => number(s?, false),
        },
        Bool => match raw {
            Value::Bool(b) => Some(Value::Bool(*b)),
            Value::String(s) => Some(Value::Bool(s == "true" || s == "on")),
            _ => None,
        },
        Tokens => match raw {
            Value::Array(a) => Some(Value::Array(
                a.iter()
                    .filter_map(|v| v.as_str())
                    .filter(|v| !v.trim().is_empty())
                    .map(|v| Value::String(v.trim().to_owned()))
                    .collect(),
            )),
            Value::String(s) if s.trim().is_empty() => Some(Value::Array(vec![])),
            Value::String(s) => Some(Value::Array(
                s.split(',')
                    .map(str::trim)
                    .filter(|x| !x.is_empty())
                    .map(|x| Value::String(x.into()))
                    .collect(),
            )),
            _ => None,
        },
        Image => image_of(Some(raw)).map(|s| Value::String(s.to_owned())),
        ImageList => image_of(Some(raw)).map(|s| Value::Array(vec![Value::String(s.to_owned())])),
        ResizeMode => index_in(RESIZE_MODES, raw),
        Index(choices) => index_in(choices, raw),
        PageIndex => {
            let shown = raw.get("value")?.as_str()?;
            raw.get("choices")?
                .as_array()?
                .iter()
                .position(|c| c.as_str() == Some(shown))
                .map(Value::from)
        }
        Radio => match raw {
            Value::Number(n) => n.as_i64().map(Value::from),
            _ => None,
        },
        RadioBool => match raw {
            Value::Number(n) => n.as_i64().map(|i| Value::Bool(i != 0)),
            _ => None,
        },
        Color => {
            let v = s?.trim();
            (v.starts_with('#') && v.len() == 7).then(|| Value::String(v.to_lowercase()))
        }
    }
}

fn index_in(choices: &[&str], raw: &Value) -> Option<Value> {
    match raw {
        Value::Number(n) => n.as_i64().map(Value::from),
        Value::String(s) => {
            let v = s.trim();
            choices
                .iter()
                .position(|m| m.eq_ignore_ascii_case(v))
                .map(Value::from)
                .or_else(|| v.parse::<i64>().ok().map(Value::from))
        }
        _ => None,
    }
}

/// The reverse of [`convert`] for "Send to": the raw value to write into the page.
pub fn unconvert(kind: Kind, v: &Value) -> Option<Value> {
    let index_name = |choices: &[&str]| {
        v.as_u64()
            .and_then(|i| choices.get(i as usize))
            .map(|c| Value::String((*c).to_owned()))
    };
    Some(match (kind, v) {
        (_, Value::Null) => return None,
        (Image | ImageList, _) => return None,
        (ResizeMode, Value::Number(_)) => index_name(RESIZE_MODES)?,
        (Index(choices), Value::Number(_)) => index_name(choices)?,
        (PageIndex, Value::Number(_)) => return None,
        (Radio, Value::Number(_)) => v.clone(),
        (RadioBool, Value::Bool(b)) => Value::from(i64::from(*b)),
        (Bool, Value::Bool(b)) => Value::Bool(*b),
        (Tokens, Value::Array(a)) => Value::Array(a.clone()),
        (_, Value::String(s)) => Value::String(s.clone()),
        (_, Value::Number(n)) => Value::String(n.to_string()),
        (_, other) => Value::String(other.to_string()),
    })
}

/// The locators to read on `tab`, with their kinds.
pub fn ids_for(tab: Tab) -> Vec<(&'static str, Kind)> {
    let mut out: Vec<(&'static str, Kind)> = Vec::new();
    let mut push = |id: &'static str, kind: Kind| {
        if !out.iter().any(|(i, _)| *i == id) {
            out.push((id, kind));
        }
    };
    if tab == Tab::Control {
        for c in control::CONTROL_FIELDS {
            push(c.id, c.kind);
        }
        push(CHECKPOINT_ID, Choice);
        push(VAE_ID, Choice);
    } else {
        for fld in FIELDS {
            if let Some(id) = fld.id(tab) {
                push(id, fld.kind);
            }
        }
        if tab == Tab::Img2img {
            push(MASK_ALPHA_ID, Float);
        }
    }
    out
}

/// Builds the enqueue request for `tab` from a snapshot.
pub fn build_request(
    tab: Tab,
    snapshot: &Snapshot,
    opts: &CaptureOptions,
) -> Result<(TaskType, EnqueueRequest), CaptureError> {
    let ty = task_type(tab);
    let mut req = EnqueueRequest::default();
    let mut params = Map::new();
    if tab == Tab::Control {
        params = control::control_params(snapshot)?;
    } else {
        for fld in FIELDS {
            let Some(id) = fld.id(tab) else { continue };
            let Some(raw) = snapshot.get(id) else {
                continue;
            };
            let Some(val) = convert(fld.kind, raw) else {
                continue;
            };
            match fld.target {
                P(name) => {
                    params.insert(name.to_owned(), val);
                }
                Target::Checkpoint => {}
                Target::Vae => {}
            }
        }
        if tab == Tab::Img2img {
            img2img_images(snapshot, &mut params);
            if !params.contains_key("init_images") {
                return Err(CaptureError::NoInitImage);
            }
            mask_infotext(snapshot, &mut params);
        }
        if let Some(ip) = control::ip_adapters(snapshot) {
            params.insert("ip_adapter".into(), ip);
        }
    }
    control::script_fields(snapshot, &mut params);
    let quick = |id: &str| {
        snapshot
            .get(id)
            .and_then(|raw| convert(Choice, raw))
            .and_then(|v| v.as_str().map(str::to_owned))
    };
    req.vae = quick(VAE_ID);
    req.checkpoint = match &opts.checkpoint {
        DropdownChoice::Current => quick(CHECKPOINT_ID).filter(|c| !c.trim().is_empty()),
        DropdownChoice::Runtime => None,
        DropdownChoice::All => scheduler_api::CheckpointChoice::All.to_value(),
        DropdownChoice::Title(t) => Some(t.clone()),
        DropdownChoice::Folder(d) => scheduler_api::CheckpointChoice::Folder(d.clone()).to_value(),
    };
    req.name = opts.name.clone().filter(|n| !n.trim().is_empty());
    req.page_snapshot = Some(snapshot_json(snapshot));
    req.params = params;
    Ok((ty, req))
}

/// img2img's input image (and mask) by the selected mode tab: Image → the image; Inpaint →
/// the image and the mask drawn on it; Sketch → the drawing merged into the image; Composite →
/// the merged image and the changed area as mask; Upload → the uploaded image and mask.
fn img2img_images(snapshot: &Snapshot, params: &mut Map<String, Value>) {
    params.remove("init_images");
    params.remove("mask");
    let input = snapshot.get(IMG2IMG_INPUT);
    let (image, mask) = match input {
        Some(Value::Object(o)) => (image_of(o.get("image")), image_of(o.get("mask"))),
        other => (image_of(other), None),
    };
    let upload = snapshot.get(IMG2IMG_MODE).and_then(Value::as_i64) == Some(4);
    let image = if upload {
        image_of(snapshot.get("img_inpaint_base")).or(image)
    } else {
        image
    };
    let mask = if upload {
        image_of(snapshot.get(MASK_ID))
    } else {
        mask
    };
    if let Some(i) = image {
        params.insert(
            "init_images".into(),
            Value::Array(vec![Value::String(i.to_owned())]),
        );
    }
    if let Some(m) = mask {
        params.insert("mask".into(), Value::String(m.to_owned()));
    }
}

/// SD.Next's img2img Generate (its UI function, not the API) writes the mask settings into
/// the infotext: `Mask blur`, `Mask alpha`, `Mask padding`, `Mask invert`, `Mask area`. The
/// API takes `extra` attributes for the processing object, so a masked task carries the same
/// `extra_generation_params` and its images say what Generate's would (the mask itself and
/// its settings are the request's own fields). Any other `extra` is kept.
fn mask_infotext(snapshot: &Snapshot, params: &mut Map<String, Value>) {
    if !params.contains_key("mask") {
        return;
    }
    let num = |k: &str, d: i64| params.get(k).and_then(Value::as_i64).unwrap_or(d);
    let invert = num("inpainting_mask_invert", 0);
    let area = params
        .get("inpaint_full_res")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let alpha = snapshot
        .get(MASK_ALPHA_ID)
        .and_then(|raw| convert(Float, raw))
        .unwrap_or(json!(1.0));
    let settings = json!({
        "Mask blur": num("mask_blur", 4),
        "Mask alpha": alpha,
        "Mask padding": num("inpaint_full_res_padding", 32),
        "Mask invert": if invert == 1 { "invert" } else { "masked" },
        "Mask area": if area { "masked" } else { "full" },
    });
    let extra = params
        .entry("extra")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Value::Object(e) = extra {
        e.entry("extra_generation_params").or_insert(settings);
    }
}

/// The snapshot as stored with the task (`page_snapshot`): images are replaced by a short
/// marker (they are already in the request), however deep they sit.
pub fn snapshot_json(snapshot: &Snapshot) -> Value {
    fn strip(v: &Value) -> Value {
        match v {
            Value::String(s) if s.starts_with("data:") => {
                Value::String(format!("<image {} bytes>", s.len()))
            }
            Value::Array(a) => Value::Array(a.iter().map(strip).collect()),
            Value::Object(o) => {
                Value::Object(o.iter().map(|(k, v)| (k.clone(), strip(v))).collect())
            }
            other => other.clone(),
        }
    }
    Value::Object(
        snapshot
            .iter()
            .map(|(k, v)| (k.clone(), strip(v)))
            .collect(),
    )
}

/// "Send to": the values to write into the page for `tab`, from a task's stored request (the
/// reverse of the tables). Returns (locator, kind, raw value). Images, the checkpoint and the
/// script are filled separately ([`fill_extras`]).
pub fn fill_plan(tab: Tab, params: &Map<String, Value>) -> Vec<(&'static str, Kind, Value)> {
    let mut out = Vec::new();
    let rows: Vec<(&'static str, &'static str, Kind)> = if tab == Tab::Control {
        control::CONTROL_FIELDS
            .iter()
            .map(|c| (c.id, c.api, c.kind))
            .collect()
    } else {
        FIELDS
            .iter()
            .filter(|f| matches!(f.target, Target::Param(_)))
            .filter_map(|f| f.id(tab).map(|id| (id, f.api_name(), f.kind)))
            .collect()
    };
    for (id, api, kind) in rows {
        if id.starts_with('@') {
            continue;
        }
        let Some(raw) = params.get(api).and_then(|v| unconvert(kind, v)) else {
            continue;
        };
        out.push((id, kind, raw));
    }
    out
}

/// A script argument with its label from the page (`None` for tasks made without labels).
pub type LabelledArg = (Option<String>, Value);

/// What "Send to" fills besides the table's fields.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FillExtras {
    /// The input image (img2img: `init_images[0]`; Control: the first unit's image).
    pub image: Option<String>,
    /// The checkpoint title for the extension's dropdown (never `*` or a folder).
    pub checkpoint: Option<String>,
    /// The script title and its arguments with their labels, when the task has a script.
    pub script: Option<(String, Vec<LabelledArg>)>,
}

/// The images, checkpoint and script of a stored request, for "Send to".
pub fn fill_extras(params: &Map<String, Value>) -> FillExtras {
    let image = params
        .get("init_images")
        .and_then(|v| v.as_array())
        .and_then(|a| a.first())
        .or_else(|| {
            params
                .get("control")
                .and_then(|c| c.as_array())
                .and_then(|a| a.iter().find_map(|u| u.get("image")))
        })
        .and_then(|v| v.as_str())
        .filter(|s| !s.is_empty())
        .map(str::to_owned);
    let checkpoint = params
        .get("checkpoint")
        .and_then(|v| v.as_str())
        .filter(|c| !c.is_empty() && !c.ends_with('*'))
        .map(str::to_owned);
    let script = params
        .get("script_name")
        .and_then(|v| v.as_str())
        .filter(|s| !s.is_empty() && !s.eq_ignore_ascii_case("none"))
        .map(|title| {
            let args = params
                .get("script_args")
                .and_then(|v| v.as_array())
                .cloned()
                .unwrap_or_default();
            let labels = params
                .get(scheduler_api::field::SCRIPT_ARG_LABELS)
                .and_then(|v| v.as_array())
                .cloned()
                .unwrap_or_default();
            let args = args
                .into_iter()
                .enumerate()
                .map(|(i, v)| (labels.get(i).and_then(|l| l.as_str()).map(str::to_owned), v))
                .collect();
            (title.to_owned(), args)
        });
    FillExtras {
        image,
        checkpoint,
        script,
    }
}

#[cfg(test)]
mod tests;
