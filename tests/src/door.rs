//! The examples of requests SD.Next refuses (or crashes on), each with the path and
//! reason the host's door gives and a valid twin SD.Next runs: shared by the door tests
//! against the fake and the live tier against a real SD.Next.

use scheduler_api::{EnqueueRequest, TaskType};
use serde_json::{Map, Value, json};

/// A small PNG as a data URL (64×64, an init image or a Control unit's input; SD.Next
/// cannot encode an 8×8 init image: 500 "Cannot handle this data type").
pub fn png() -> String {
    use base64::Engine;
    let img = image::RgbImage::from_fn(64, 64, |x, y| {
        image::Rgb([if x == y { 255 } else { 200 }, 30, 30])
    });
    let mut bytes = Vec::new();
    image::DynamicImage::ImageRgb8(img)
        .write_to(
            &mut std::io::Cursor::new(&mut bytes),
            image::ImageFormat::Png,
        )
        .expect("encode png");
    format!(
        "data:image/png;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    )
}

/// The smallest body of a type that SD.Next runs fast (64×64, 2 steps); a Control unit is
/// Canny with the kit's `tiny-controlnet` (also listed by the fake).
pub fn base(kind: TaskType) -> Map<String, Value> {
    let v = match kind {
        TaskType::Txt2img => {
            json!({"prompt": "door", "steps": 2, "width": 64, "height": 64, "seed": 1})
        }
        TaskType::Img2img => json!({"prompt": "door", "steps": 2, "width": 64, "height": 64,
                                    "seed": 1, "init_images": [png()]}),
        TaskType::Control => json!({"prompt": "door", "steps": 2, "width_before": 64,
            "height_before": 64, "seed": 1,
            "control": [{"unit_type": "controlnet", "process": "Canny",
                         "model": "tiny-controlnet", "strength": 1.0, "image": png()}]}),
    };
    v.as_object().cloned().expect("an object")
}

/// One example: what it changes in [`base`], where the door says the fault is, the start
/// of its reason, and the change of its valid twin.
#[derive(Debug, Clone)]
pub struct Example {
    /// A short name for messages.
    pub name: &'static str,
    /// The task type.
    pub kind: TaskType,
    /// Fields set over the base body (host-only ones, such as `checkpoint`, included).
    pub bad: Value,
    /// The JSON path the refusal names.
    pub path: &'static str,
    /// The refusal's message, or its start (the lists of known names differ per backend).
    pub message: &'static str,
    /// Fields of the valid twin.
    pub good: Value,
}

impl Example {
    fn body(&self, change: &Value) -> EnqueueRequest {
        let mut b = base(self.kind);
        for (k, v) in change.as_object().expect("an object") {
            if k == "control" {
                // The unit's fields over the base unit.
                let mut unit = b["control"][0].clone();
                for (uk, uv) in v[0].as_object().expect("a unit") {
                    unit[uk] = uv.clone();
                }
                b.insert(k.clone(), json!([unit]));
            } else {
                b.insert(k.clone(), v.clone());
            }
        }
        serde_json::from_value(Value::Object(b)).expect("an enqueue body")
    }

    /// The refused request.
    pub fn bad_body(&self) -> EnqueueRequest {
        self.body(&self.bad)
    }

    /// Its valid twin.
    pub fn good_body(&self) -> EnqueueRequest {
        self.body(&self.good)
    }
}

/// Every example of the issue. `checkpoint` is a checkpoint the backend lists (the valid
/// twin of the unknown checkpoint).
pub fn examples(checkpoint: &str) -> Vec<Example> {
    use TaskType::*;
    vec![
        Example {
            name: "steps: \"many\"",
            kind: Txt2img,
            bad: json!({"steps": "many"}),
            path: "steps",
            message: "steps must be an integer, got \"many\"",
            good: json!({"steps": "2"}),
        },
        Example {
            name: "a NUL in the prompt",
            kind: Txt2img,
            bad: json!({"prompt": "a\u{0}b"}),
            path: "prompt",
            message: "prompt contains a NUL character (U+0000), which no text field may hold",
            good: json!({"prompt": "a b"}),
        },
        Example {
            name: "width: \"wide\"",
            kind: Txt2img,
            bad: json!({"width": "wide"}),
            path: "width",
            message: "width must be an integer, got \"wide\"",
            good: json!({"width": "64"}),
        },
        Example {
            name: "seed: \"abc\"",
            kind: Txt2img,
            bad: json!({"seed": "abc"}),
            path: "seed",
            message: "seed must be an integer, got \"abc\"",
            good: json!({"seed": "7"}),
        },
        Example {
            name: "cfg_scale: \"high\"",
            kind: Txt2img,
            bad: json!({"cfg_scale": "high"}),
            path: "cfg_scale",
            message: "cfg_scale must be a number, got \"high\"",
            good: json!({"cfg_scale": "6.5"}),
        },
        Example {
            name: "prompt: 123",
            kind: Txt2img,
            bad: json!({"prompt": 123}),
            path: "prompt",
            message: "prompt must be a string, got 123",
            good: json!({"prompt": "123"}),
        },
        Example {
            name: "batch_size: 0",
            kind: Txt2img,
            bad: json!({"batch_size": 0}),
            path: "batch_size",
            message: "batch_size must be at least 1, got 0",
            good: json!({"batch_size": 1}),
        },
        Example {
            name: "sampler_name: \"NoSuchSampler\"",
            kind: Txt2img,
            bad: json!({"sampler_name": "NoSuchSampler"}),
            path: "sampler_name",
            message: "unknown sampler NoSuchSampler; known: ",
            good: json!({"sampler_name": "Euler a"}),
        },
        Example {
            name: "checkpoint: \"no-such-model\"",
            kind: Txt2img,
            bad: json!({"checkpoint": "no-such-model"}),
            path: "checkpoint",
            message: "unknown checkpoint no-such-model; known: ",
            good: json!({"checkpoint": checkpoint}),
        },
        Example {
            name: "img2img denoising_strength: \"half\"",
            kind: Img2img,
            bad: json!({"denoising_strength": "half"}),
            path: "denoising_strength",
            message: "denoising_strength must be a number, got \"half\"",
            good: json!({"denoising_strength": 0.5}),
        },
        Example {
            name: "control unit strength: \"strong\"",
            kind: Control,
            bad: json!({"control": [{"strength": "strong"}]}),
            path: "control[0].strength",
            message: "control[0].strength must be a number, got \"strong\"",
            good: json!({"control": [{"strength": 0.8}]}),
        },
    ]
}

/// Whether a refusal message is the example's (exactly, or starting with it for the
/// unknown names, whose lists come from the backend).
pub fn message_matches(e: &Example, message: &str) -> bool {
    if e.message.ends_with("known: ") {
        message.starts_with(e.message) && message.len() > e.message.len()
    } else {
        message == e.message
    }
}
