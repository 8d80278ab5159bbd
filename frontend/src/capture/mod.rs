//! Capture: SD.Next's form values, read by element id, mapped to API request fields.
//!
//! The DOM side (wasm only, [`dom`]) reads a [`Snapshot`]: element id → raw value as the page
//! shows it (strings for text boxes, sliders, numbers and dropdowns; booleans for checkboxes;
//! string arrays for multiselects; data URLs for images). Everything else here is pure Rust over
//! that snapshot, driven by ONE table, [`FIELDS`], so it is unit-tested natively.
//!
//! Rules from the measured SD.Next behaviour (reference sdnext-api.md §7):
//! - CFG `-1` (model default) is sent as is; so is CFG rescale `-1` (`cfg_rescale`).
//! - img2img width/height `0` (use the image size × scale) is sent as is.
//! - Batch count → `n_iter`; the sampler is sent as shown ("Default" included).
//! - `styles` are the tokens of the multiselect; `cfg_end`, `subseed`, `subseed_strength` are sent.
//! - The checkpoint comes from the quicksettings (`#setting_sd_model_checkpoint`) unless the
//!   extension's dropdown says otherwise; it becomes the host-only field `checkpoint`.

#[cfg(target_arch = "wasm32")]
pub mod dom;

use scheduler_api::{EnqueueRequest, TaskType, checkpoint_in_folder, checkpoint_segments};
use serde_json::{Map, Number, Value};
use std::collections::BTreeMap;

/// Element id → raw value as read from the page.
pub type Snapshot = BTreeMap<String, Value>;

/// The generation tab the Enqueue button belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tab {
    /// Text → image.
    Txt2img,
    /// Image → image.
    Img2img,
    /// SD.Next's Control tab (text-only → txt2img, with an input image → img2img).
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
    /// Dropdown of SD.Next resize modes, sent as its index.
    ResizeMode,
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

/// One row of the mapping table: an API target and the element id on each tab.
#[derive(Debug, Clone, Copy)]
pub struct Field {
    /// Where the value goes.
    pub target: Target,
    /// How to convert it.
    pub kind: Kind,
    /// Id on the txt2img tab.
    pub txt2img: Option<&'static str>,
    /// Id on the img2img tab.
    pub img2img: Option<&'static str>,
    /// Id on the Control tab.
    pub control: Option<&'static str>,
}

impl Field {
    /// The element id on `tab`.
    pub fn id(&self, tab: Tab) -> Option<&'static str> {
        match tab {
            Tab::Txt2img => self.txt2img,
            Tab::Img2img => self.img2img,
            Tab::Control => self.control,
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

const fn f(
    target: Target,
    kind: Kind,
    t: Option<&'static str>,
    i: Option<&'static str>,
    c: Option<&'static str>,
) -> Field {
    Field {
        target,
        kind,
        txt2img: t,
        img2img: i,
        control: c,
    }
}

use Kind::*;
use Target::Param as P;

/// Ids shared by every tab (quicksettings).
pub const CHECKPOINT_ID: &str = "setting_sd_model_checkpoint";
/// The quicksettings VAE dropdown.
pub const VAE_ID: &str = "setting_sd_vae";
/// Inpaint-upload mask image.
pub const MASK_ID: &str = "img_inpaint_mask";

/// THE mapping table: element id (per tab) → API field.
pub const FIELDS: &[Field] = &[
    f(
        P("prompt"),
        Text,
        Some("txt2img_prompt"),
        Some("img2img_prompt"),
        Some("control_prompt"),
    ),
    f(
        P("negative_prompt"),
        Text,
        Some("txt2img_neg_prompt"),
        Some("img2img_neg_prompt"),
        Some("control_neg_prompt"),
    ),
    f(
        P("styles"),
        Tokens,
        Some("txt2img_styles"),
        Some("img2img_styles"),
        Some("control_styles"),
    ),
    f(
        P("steps"),
        Int,
        Some("txt2img_steps"),
        Some("img2img_steps"),
        Some("control_steps"),
    ),
    f(
        P("sampler_name"),
        Choice,
        Some("txt2img_sampling"),
        Some("img2img_sampling"),
        Some("control_sampling"),
    ),
    f(
        P("cfg_scale"),
        Float,
        Some("txt2img_cfg_scale"),
        Some("img2img_cfg_scale"),
        Some("control_cfg_scale"),
    ),
    f(
        P("cfg_end"),
        Float,
        Some("txt2img_cfg_end"),
        Some("img2img_cfg_end"),
        Some("control_cfg_end"),
    ),
    f(
        P("cfg_rescale"),
        Float,
        Some("txt2img_image_cfg_rescale"),
        Some("img2img_image_cfg_rescale"),
        Some("control_image_cfg_rescale"),
    ),
    f(
        P("width"),
        Int,
        Some("txt2img_width"),
        Some("img2img_width"),
        Some("control_before_resize_width"),
    ),
    f(
        P("height"),
        Int,
        Some("txt2img_height"),
        Some("img2img_height"),
        Some("control_before_resize_height"),
    ),
    f(
        P("seed"),
        Int,
        Some("txt2img_seed"),
        Some("img2img_seed"),
        Some("control_seed"),
    ),
    f(
        P("subseed"),
        Int,
        Some("txt2img_subseed"),
        Some("img2img_subseed"),
        Some("control_subseed"),
    ),
    f(
        P("subseed_strength"),
        Float,
        Some("txt2img_subseed_strength"),
        Some("img2img_subseed_strength"),
        Some("control_subseed_strength"),
    ),
    f(
        P("seed_resize_from_w"),
        Int,
        Some("txt2img_seed_resize_from_w"),
        Some("img2img_seed_resize_from_w"),
        None,
    ),
    f(
        P("seed_resize_from_h"),
        Int,
        Some("txt2img_seed_resize_from_h"),
        Some("img2img_seed_resize_from_h"),
        None,
    ),
    f(
        P("n_iter"),
        Int,
        Some("txt2img_batch_count"),
        Some("img2img_batch_count"),
        Some("control_batch_count"),
    ),
    f(
        P("batch_size"),
        Int,
        Some("txt2img_batch_size"),
        Some("img2img_batch_size"),
        Some("control_batch_size"),
    ),
    f(
        P("clip_skip"),
        Float,
        Some("txt2img_clip_skip"),
        Some("img2img_clip_skip"),
        None,
    ),
    f(
        P("vae_type"),
        Choice,
        Some("txt2img_vae_type"),
        Some("img2img_vae_type"),
        None,
    ),
    f(
        P("tiling"),
        Bool,
        Some("txt2img_tiling"),
        Some("img2img_tiling"),
        None,
    ),
    f(
        P("hidiffusion"),
        Bool,
        Some("txt2img_hidiffusion"),
        Some("img2img_hidiffusion"),
        None,
    ),
    // Hires / second pass (txt2img's "denoising strength" is the hires one).
    f(P("enable_hr"), Bool, Some("txt2img_enable_hr"), None, None),
    f(P("hr_force"), Bool, Some("txt2img_hr_force"), None, None),
    f(
        P("hr_resize_mode"),
        ResizeMode,
        Some("txt2img_resize_mode"),
        None,
        None,
    ),
    f(
        P("hr_upscaler"),
        Choice,
        Some("txt2img_resize_name"),
        None,
        None,
    ),
    f(P("hr_scale"), Float, Some("txt2img_scale"), None, None),
    f(
        P("hr_resize_x"),
        Int,
        Some("txt2img_resize_width"),
        None,
        None,
    ),
    f(
        P("hr_resize_y"),
        Int,
        Some("txt2img_resize_height"),
        None,
        None,
    ),
    f(
        P("hr_second_pass_steps"),
        Int,
        Some("txt2img_steps_alt"),
        None,
        None,
    ),
    f(
        P("hr_sampler_name"),
        Choice,
        Some("txt2img_sampling_alt"),
        None,
        None,
    ),
    f(
        P("denoising_strength"),
        Float,
        Some("txt2img_denoising_strength"),
        Some("img2img_denoising_strength"),
        Some("control_input_denoising_strength"),
    ),
    // Refiner.
    f(
        P("refiner_start"),
        Float,
        Some("txt2img_refiner_start"),
        Some("img2img_refiner_start"),
        None,
    ),
    f(
        P("refiner_steps"),
        Int,
        Some("txt2img_refiner_steps"),
        Some("img2img_refiner_steps"),
        None,
    ),
    f(
        P("refiner_prompt"),
        Text,
        Some("txt2img_refiner_prompt"),
        Some("img2img_refiner_prompt"),
        None,
    ),
    f(
        P("refiner_negative"),
        Text,
        Some("txt2img_refiner_neg_prompt"),
        Some("img2img_refiner_neg_prompt"),
        None,
    ),
    // img2img only.
    f(
        P("resize_mode"),
        ResizeMode,
        None,
        Some("img2img_resize_mode"),
        None,
    ),
    f(
        P("resize_name"),
        Choice,
        None,
        Some("img2img_resize_name"),
        None,
    ),
    f(P("scale_by"), Float, None, Some("img2img_scale"), None),
    f(P("mask_blur"), Int, None, Some("img2img_mask_blur"), None),
    f(
        P("inpaint_full_res"),
        Bool,
        None,
        Some("img2img_inpaint_full_res"),
        None,
    ),
    f(
        P("inpaint_full_res_padding"),
        Int,
        None,
        Some("img2img_inpaint_full_res_padding"),
        None,
    ),
    f(
        P("init_images"),
        ImageList,
        None,
        Some("img2img_image"),
        Some("control_input"),
    ),
    f(P("mask"), Image, None, Some(MASK_ID), None),
    // Quicksettings: host-only fields.
    f(
        Target::Checkpoint,
        Choice,
        Some(CHECKPOINT_ID),
        Some(CHECKPOINT_ID),
        Some(CHECKPOINT_ID),
    ),
    f(
        Target::Vae,
        Choice,
        Some(VAE_ID),
        Some(VAE_ID),
        Some(VAE_ID),
    ),
];

/// SD.Next's resize-mode choices, in index order.
pub const RESIZE_MODES: &[&str] = &["None", "Fixed", "Crop", "Fill", "Outpaint", "Context aware"];

/// The checkpoint choice of the extension's dropdown.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum CheckpointChoice {
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

impl CheckpointChoice {
    /// The dropdown `value` string of this choice.
    pub fn to_value(&self) -> String {
        match self {
            CheckpointChoice::Current => "@current".into(),
            CheckpointChoice::Runtime => "@runtime".into(),
            CheckpointChoice::All => "@all".into(),
            CheckpointChoice::Title(t) => format!("t:{t}"),
            CheckpointChoice::Folder(d) => format!("d:{d}"),
        }
    }

    /// Parses a dropdown `value` string.
    pub fn from_value(v: &str) -> CheckpointChoice {
        match v {
            "@runtime" => CheckpointChoice::Runtime,
            "@all" => CheckpointChoice::All,
            _ => {
                if let Some(t) = v.strip_prefix("t:") {
                    CheckpointChoice::Title(t.into())
                } else if let Some(d) = v.strip_prefix("d:") {
                    CheckpointChoice::Folder(d.into())
                } else {
                    CheckpointChoice::Current
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
            CheckpointChoice::Current.to_value(),
            "Current checkpoint".to_owned(),
        ),
        (
            CheckpointChoice::Runtime.to_value(),
            "Runtime checkpoint".to_owned(),
        ),
    ];
    for t in titles {
        out.push((CheckpointChoice::Title(t.clone()).to_value(), t.clone()));
    }
    for (dir, n) in checkpoint_folders(titles) {
        out.push((
            CheckpointChoice::Folder(dir.clone()).to_value(),
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
    /// The checkpoint choice.
    pub checkpoint: CheckpointChoice,
    /// Task name.
    pub name: Option<String>,
}

/// Why a capture cannot become a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaptureError {
    /// img2img without an input image.
    NoInitImage,
}

impl std::fmt::Display for CaptureError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CaptureError::NoInitImage => f.write_str("img2img needs an input image"),
        }
    }
}

/// The task type a tab's capture becomes (Control: img2img when it has an input image).
pub fn task_type(tab: Tab, snapshot: &Snapshot) -> TaskType {
    match tab {
        Tab::Txt2img => TaskType::Txt2img,
        Tab::Img2img => TaskType::Img2img,
        Tab::Control => {
            if image_of(snapshot.get("control_input")).is_some() {
                TaskType::Img2img
            } else {
                TaskType::Txt2img
            }
        }
    }
}

fn image_of(v: Option<&Value>) -> Option<&str> {
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
        Int => number(s?, true),
        Float => match raw {
            Value::Number(n) => Some(Value::Number(n.clone())),
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
        ResizeMode => {
            let v = s?.trim();
            RESIZE_MODES
                .iter()
                .position(|m| m.eq_ignore_ascii_case(v))
                .map(Value::from)
                .or_else(|| v.parse::<i64>().ok().map(Value::from))
        }
    }
}

/// The ids to read on `tab`, with their kinds (Control also reads nothing of img2img).
pub fn ids_for(tab: Tab) -> Vec<(&'static str, Kind)> {
    let mut out: Vec<(&'static str, Kind)> = Vec::new();
    for fld in FIELDS {
        if let Some(id) = fld.id(tab)
            && !out.iter().any(|(i, _)| *i == id)
        {
            out.push((id, fld.kind));
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
    let ty = task_type(tab, snapshot);
    let mut params = Map::new();
    let mut req = EnqueueRequest::default();
    for fld in FIELDS {
        let Some(id) = fld.id(tab) else { continue };
        // Img2img-only targets never go into a txt2img request (Control without an image).
        if ty == TaskType::Txt2img
            && matches!(
                fld.target,
                P("init_images") | P("mask") | P("resize_mode") | P("scale_by")
            )
        {
            continue;
        }
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
            Target::Checkpoint => {
                req.checkpoint = val.as_str().map(str::to_owned);
            }
            Target::Vae => req.vae = val.as_str().map(str::to_owned),
        }
    }
    if ty == TaskType::Img2img && !params.contains_key("init_images") {
        return Err(CaptureError::NoInitImage);
    }
    req.checkpoint = match &opts.checkpoint {
        CheckpointChoice::Current => req.checkpoint.filter(|c| !c.trim().is_empty()),
        CheckpointChoice::Runtime => None,
        CheckpointChoice::All => scheduler_api::CheckpointChoice::All.to_value(),
        CheckpointChoice::Title(t) => Some(t.clone()),
        CheckpointChoice::Folder(d) => {
            scheduler_api::CheckpointChoice::Folder(d.clone()).to_value()
        }
    };
    req.name = opts.name.clone().filter(|n| !n.trim().is_empty());
    req.page_snapshot = Some(snapshot_json(snapshot));
    req.params = params;
    Ok((ty, req))
}

/// The snapshot as stored with the task (`page_snapshot`): images are replaced by a short
/// marker (they are already in `init_images` / `mask`).
pub fn snapshot_json(snapshot: &Snapshot) -> Value {
    let mut m = Map::new();
    for (k, v) in snapshot {
        let v = match v {
            Value::String(s) if s.starts_with("data:") => {
                Value::String(format!("<image {} bytes>", s.len()))
            }
            other => other.clone(),
        };
        m.insert(k.clone(), v);
    }
    Value::Object(m)
}

/// "Send to txt2img/img2img": the values to write into the page for `tab`, from a task's
/// stored request (the reverse of the table). Returns (element id, kind, raw value).
pub fn fill_plan(tab: Tab, params: &Map<String, Value>) -> Vec<(&'static str, Kind, Value)> {
    let mut out = Vec::new();
    for fld in FIELDS {
        let Some(id) = fld.id(tab) else { continue };
        if matches!(fld.kind, Image | ImageList) || matches!(fld.target, Target::Vae) {
            continue;
        }
        let Some(v) = params.get(fld.api_name()) else {
            continue;
        };
        let raw = match (fld.kind, v) {
            (_, Value::Null) => continue,
            (ResizeMode, Value::Number(n)) => {
                let i = n.as_u64().unwrap_or(0) as usize;
                Value::String(RESIZE_MODES.get(i).copied().unwrap_or("None").to_owned())
            }
            (Bool, Value::Bool(b)) => Value::Bool(*b),
            (Tokens, Value::Array(a)) => Value::Array(a.clone()),
            (_, Value::String(s)) => Value::String(s.clone()),
            (_, Value::Number(n)) => Value::String(n.to_string()),
            (_, other) => Value::String(other.to_string()),
        };
        // A checkpoint of `*` or a folder is not a title the page can show.
        if matches!(fld.target, Target::Checkpoint) && raw.as_str().is_none_or(|s| s.ends_with('*'))
        {
            continue;
        }
        out.push((id, fld.kind, raw));
    }
    out
}

#[cfg(test)]
mod tests;
