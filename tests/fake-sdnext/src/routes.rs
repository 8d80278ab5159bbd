//! HTTP routes of the fake SD.Next.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Map, Value, json};

use crate::imaging;
use crate::state::{Job, Shared, timestamp_string};
use crate::{ControlRecord, FakeConfigPatch, Fault, GenerationRecord};

type St = State<Arc<Shared>>;

/// Sampler names the fake lists (a realistic subset of SD.Next's 114). "Default" is valid
/// but not listed.
const SAMPLERS: &[&str] = &[
    "UniPC",
    "DDIM",
    "Euler",
    "Euler a",
    "Euler SGM",
    "Euler EDM",
    "Euler FlowMatch",
    "DPM++",
    "DPM++ 2M",
    "DPM++ 3M",
    "DPM++ 1S",
    "DPM++ SDE",
    "DPM++ 2M SDE",
    "DPM++ 2M EDM",
    "DPM SDE",
    "Heun",
    "LCM",
    "DEIS",
    "PNDM",
    "LMSD",
    "KDPM2",
    "KDPM2 a",
    "TCD",
];

/// `alwayson_scripts` titles the fake accepts (others → 422, as SD.Next does).
const ALWAYSON: &[&str] = &[
    "extra options",
    "hypertile",
    "freeu",
    "dynamic thresholding (cfg-scale fix)",
];

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/sdapi/v1/version", get(version))
        .route("/sdapi/v1/sd-models", get(sd_models))
        .route("/sdapi/v1/samplers", get(samplers))
        .route("/sdapi/v1/sd-vae", get(sd_vae))
        .route("/sdapi/v1/upscalers", get(upscalers))
        .route("/sdapi/v1/controlnets", get(controlnets))
        .route("/openapi.json", get(openapi))
        .route("/sdapi/v1/unload-checkpoint", post(unload_checkpoint))
        .route("/sdapi/v1/reload-checkpoint", post(no_content))
        .route("/sdapi/v1/sampler", get(sampler))
        .route("/sdapi/v1/options", get(get_options).post(post_options))
        .route(
            "/sdapi/v1/checkpoint",
            get(get_checkpoint).post(post_checkpoint),
        )
        .route("/sdapi/v1/status", get(status))
        .route("/sdapi/v1/progress", get(progress))
        .route("/sdapi/v1/memory", get(memory))
        .route("/sdapi/v1/log", get(log))
        .route("/sdapi/v1/history", get(history))
        .route("/sdapi/v1/scripts", get(scripts))
        .route("/sdapi/v1/txt2img", post(txt2img))
        .route("/sdapi/v1/img2img", post(img2img))
        .route("/sdapi/v1/control", post(control))
        .route("/sdapi/v1/interrupt", post(interrupt))
        .route("/sdapi/v1/skip", post(no_content))
        .route("/sdapi/v1/refresh-checkpoints", post(no_content))
        .route("/fake/stats", get(fake_stats).delete(fake_reset_stats))
        .route("/fake/config", post(fake_config))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(
            shared.clone(),
            record_and_auth,
        ))
        .with_state(shared)
}

fn json_response(status: StatusCode, v: Value) -> Response {
    let mut r = Response::new(Body::from(v.to_string()));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

fn ok(v: Value) -> Response {
    json_response(StatusCode::OK, v)
}

fn http_exception(code: u16, detail: &str) -> Response {
    json_response(
        StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        json!({"error": "HTTPException", "code": code, "detail": detail, "body": "",
               "errors": format!("{code}: {detail}")}),
    )
}

async fn not_found() -> Response {
    json_response(StatusCode::NOT_FOUND, json!({"detail": "Not Found"}))
}

async fn method_not_allowed() -> Response {
    json_response(
        StatusCode::METHOD_NOT_ALLOWED,
        json!({"detail": "Method Not Allowed"}),
    )
}

async fn no_content() -> StatusCode {
    StatusCode::NO_CONTENT
}

/// Records every request (except the `/fake/` hooks) and enforces HTTP Basic auth on `/sdapi/`.
async fn record_and_auth(State(s): St, req: Request, next: Next) -> Response {
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    if !path.starts_with("/fake/") {
        s.record_request(req.method().as_str(), &path);
    }
    if path.starts_with("/sdapi/") {
        let auth = s.lock().auth.clone();
        if let Some((user, pass)) = auth {
            match basic_credentials(req.headers()) {
                None => return http_exception(401, "Not authenticated"),
                Some((u, p)) if u != user || p != pass => {
                    return http_exception(401, "Unauthorized");
                }
                Some(_) => {}
            }
        }
    }
    next.run(req).await
}

fn basic_credentials(h: &HeaderMap) -> Option<(String, String)> {
    let v = h.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = v.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = B64.decode(rest.trim()).ok()?;
    let s = String::from_utf8(raw).ok()?;
    let (u, p) = s.split_once(':')?;
    Some((u.to_string(), p.to_string()))
}

async fn version() -> Response {
    ok(
        json!({"app": "sd.next", "updated": "unknown", "commit": "fake", "branch": "unknown",
              "url": "unknown", "kanvas": "unknown", "ui": "unknown"}),
    )
}

async fn sd_models(State(s): St) -> Response {
    let g = s.lock();
    ok(Value::Array(
        g.models.iter().map(|m| m.sd_models_json()).collect(),
    ))
}

async fn sd_vae(State(s): St) -> Response {
    let g = s.lock();
    ok(Value::Array(
        g.vaes
            .iter()
            .map(|v| json!({"model_name": v, "filename": format!("/srv/fake/models/VAE/{v}.safetensors")}))
            .collect(),
    ))
}

/// Upscaler names the fake lists: SD.Next `058a7f0`'s (the kit's `/sdapi/v1/upscalers`).
const UPSCALERS: &[&str] = &[
    "None",
    "Resize Nearest",
    "Resize Lanczos",
    "Resize Bicubic",
    "Resize Bilinear",
    "Resize Hamming",
    "Resize Box",
    "Resize Sharpfin MKS2021",
    "Resize Sharpfin Lanczos3",
    "Latent Nearest",
    "Latent Nearest exact",
    "Latent Area",
    "Latent Bilinear",
    "Latent Bicubic",
    "Latent Bilinear antialias",
    "Latent Bicubic antialias",
    "Asymmetric VAE v1",
    "Asymmetric VAE v2",
    "WAN Asymmetric Upscale",
    "DCC Interpolation",
    "VIPS Lanczos 2",
    "VIPS Lanczos 3",
    "VIPS Mitchell",
    "VIPS MagicKernelSharp 2013",
    "VIPS MagicKernelSharp 2021",
    "HQX Interpolation",
    "ICB Interpolation",
    "Spandrel 4x RealPLKSR NomosWebPhoto",
    "Spandrel 2x RealPLKSR AnimeSharpV2",
    "Aura SR 4x",
    "ESRGAN 4x GAN",
    "ESRGAN 4x Ultrasharp",
    "ESRGAN 4x Valar",
    "ESRGAN 4x Box",
    "ESRGAN 4x BigFace V3",
    "ESRGAN 4x Remacri",
    "ESRGAN 4x NMKD Siax",
    "ESRGAN 4x NMKD Superscale",
    "ESRGAN 4x NMKD YandereNeoXL",
    "ESRGAN 8x NMKD Faces",
    "ESRGAN 8x Superscale",
    "ESRGAN 8x HugePaint",
    "SeedVR2 3B",
    "SeedVR2 7B",
    "SeedVR2 7B Sharp",
    "SwinIR 4x GAN",
    "SwinIR 4x PSNR",
    "SCUNet GAN",
    "SCUNet PSNR",
    "Diffusion Latent Upscaler 2x",
    "Diffusion Latent Upscaler 4x",
];

async fn upscalers() -> Response {
    ok(Value::Array(
        UPSCALERS
            .iter()
            .map(|n| json!({"name": n, "model_name": null, "model_path": null, "model_url": null, "scale": 4.0}))
            .collect(),
    ))
}

/// ControlNet model names: SD.Next's predefined ones for the loaded model type, then the
/// local folders; `model_type=all` lists every type's (a subset here).
async fn controlnets(Query(q): Query<HashMap<String, String>>) -> Response {
    let mut names = vec!["Canny", "Depth", "OpenPose", "Tile"];
    if q.get("model_type").map(String::as_str) == Some("all") {
        names.extend(["Canny XL", "Xinsir Union XL", "InstantX Union F1"]);
    }
    names.push("tiny-controlnet");
    ok(json!(names))
}

async fn openapi(State(s): St) -> Response {
    let doc = s.lock().openapi.clone();
    match doc {
        Some(doc) => ok(doc),
        None => not_found().await,
    }
}

async fn unload_checkpoint(State(s): St) -> StatusCode {
    let _lock = s.gen_lock.lock().await;
    let mut g = s.lock();
    g.loaded = None;
    g.sync_stats();
    StatusCode::NO_CONTENT
}

fn sampler_options(name: &str) -> Value {
    let mut o = json!({"timestep_spacing": "linspace", "steps_offset": 0});
    if name.starts_with("UniPC") {
        o = json!({"timestep_spacing": "linspace", "solver_order": 2,
                   "lower_order_final": true});
    }
    o
}

async fn samplers() -> Response {
    ok(Value::Array(
        SAMPLERS
            .iter()
            .map(|n| json!({"name": n, "options": sampler_options(n)}))
            .collect(),
    ))
}

async fn sampler() -> Response {
    ok(json!({"name": "PNDMScheduler", "options": {
        "num_train_timesteps": 1000, "beta_start": 0.00085, "beta_end": 0.012,
        "beta_schedule": "scaled_linear", "trained_betas": null, "skip_prk_steps": true,
        "set_alpha_to_one": false, "prediction_type": "epsilon", "timestep_spacing": "leading",
        "steps_offset": 1}}))
}

async fn scripts() -> Response {
    ok(json!({
        "txt2img": ["loopback", "prompt matrix", "prompts from file", "xyz grid"],
        "img2img": ["loopback", "outpainting", "prompt matrix", "prompts from file", "xyz grid"],
        "control": ["loopback", "prompt matrix", "prompts from file", "xyz grid"],
    }))
}

async fn get_options(State(s): St) -> Response {
    ok(s.lock().options_json())
}

/// `POST /sdapi/v1/options`: runs to its end even when the client goes away, as SD.Next's
/// model load does.
async fn post_options(State(s): St, body: Bytes) -> Response {
    detached(set_options(s, body)).await
}

async fn set_options(s: Arc<Shared>, body: Bytes) -> Response {
    let map = match parse_object(&body) {
        Ok(m) => m,
        Err(r) => return r,
    };
    s.lock().stats.options_posts.push(map.clone());
    let mut updated = Vec::new();
    for (k, v) in map {
        let changed = match k.as_str() {
            "sd_model_checkpoint" => {
                let wanted = v.as_str().unwrap_or_default().to_string();
                set_checkpoint_option(&s, &wanted).await
            }
            "samples_format" => {
                let mut g = s.lock();
                let new = v.as_str().map(str::to_string);
                let changed = new.is_some() && new != g.samples_format;
                if changed {
                    g.samples_format = new;
                    g.sync_stats();
                }
                changed
            }
            _ => {
                let mut g = s.lock();
                let changed = g.options.get(&k) != Some(&v);
                g.options.insert(k.clone(), v);
                changed
            }
        };
        updated.push(json!({ k: changed }));
    }
    ok(json!({ "updated": updated }))
}

/// `/options {"sd_model_checkpoint": …}`: load under the global lock; an unknown name unloads.
async fn set_checkpoint_option(s: &Arc<Shared>, wanted: &str) -> bool {
    let _lock = s.gen_lock.lock().await;
    let (idx, load_ms, same) = {
        let g = s.lock();
        let idx = g.find_fuzzy(wanted);
        let same = idx.is_some() && idx == g.loaded;
        (idx, g.load_ms, same)
    };
    match idx {
        None => {
            s.lock().mark_unloaded(wanted);
            true
        }
        Some(_) if same => false,
        Some(i) => {
            if s.take_load_hold() {
                let title = s.lock().models[i].title.clone();
                s.hold(&format!("load {title}")).await;
            }
            tokio::time::sleep(Duration::from_millis(load_ms)).await;
            s.lock().mark_loaded(i);
            true
        }
    }
}

async fn get_checkpoint(State(s): St) -> Response {
    let g = s.lock();
    match g.loaded {
        None => ok(json!({"type": null, "class": null})),
        Some(i) => {
            let m = &g.models[i];
            ok(json!({"type": "sd", "class": "StableDiffusionPipeline",
                      "checkpoint": m.filename, "title": m.title, "name": m.name,
                      "filename": m.filename, "hash": m.hash}))
        }
    }
}

async fn post_checkpoint(State(s): St, Query(q): Query<HashMap<String, String>>) -> Response {
    let wanted = q.get("sd_model_checkpoint").cloned().unwrap_or_default();
    let _lock = s.gen_lock.lock().await;
    let (idx, load_ms, same) = {
        let g = s.lock();
        let idx = g.find_fuzzy(&wanted);
        (idx, g.load_ms, idx.is_some() && idx == g.loaded)
    };
    match idx {
        None => {
            s.lock().mark_unloaded(&wanted);
            ok(json!({"ok": false}))
        }
        Some(_) if same => ok(json!({"ok": false})),
        Some(i) => {
            tokio::time::sleep(Duration::from_millis(load_ms)).await;
            s.lock().mark_loaded(i);
            ok(json!({"ok": true}))
        }
    }
}

fn job_progress(job: &Job) -> f64 {
    let total = (job.job_count * job.steps).max(1) as f64;
    let done = (job.job_no * job.steps + job.step) as f64;
    ((done / total) * 100.0).round() / 100.0
}

async fn status(State(s): St) -> Response {
    let g = s.lock();
    let uptime = s.start.elapsed().as_secs();
    match (&g.job, g.stuck_control) {
        (Some(job), _) => {
            let p = job_progress(job);
            let elapsed = job.started.elapsed().as_secs_f64();
            let eta = if p > 0.0 { elapsed / p - elapsed } else { 0.0 };
            ok(
                json!({"status": "running", "task": "Inference", "timestamp": g.job_timestamp,
                      "current": "", "id": job.id, "job": job.job_no, "jobs": job.job_count,
                      "total": g.total_jobs, "step": job.step, "steps": job.steps, "queued": 0,
                      "uptime": uptime, "elapsed": round2(elapsed), "eta": round2(eta),
                      "progress": p}),
            )
        }
        (None, true) => ok(
            json!({"status": "running", "task": "API-CTL", "timestamp": g.job_timestamp,
                   "current": "", "id": "", "job": 0, "jobs": 1, "total": g.total_jobs,
                   "step": 0, "steps": 0, "queued": 0, "uptime": uptime, "elapsed": 0.0,
                   "eta": null, "progress": 0.0}),
        ),
        (None, false) => ok(
            json!({"status": "idle", "task": "", "timestamp": null, "current": "", "id": "",
                   "job": 0, "jobs": 0, "total": g.total_jobs, "step": 0, "steps": 0,
                   "queued": 0, "uptime": uptime, "elapsed": 0.0, "eta": null,
                   "progress": 0.0}),
        ),
    }
}

fn fit_within(w: u32, h: u32, max: u32) -> (u32, u32) {
    let big = w.max(h);
    if big <= max {
        return (w.max(1), h.max(1));
    }
    let scale = |v: u32| ((u64::from(v) * u64::from(max)) / u64::from(big)).max(1) as u32;
    (scale(w), scale(h))
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn truthy(q: &HashMap<String, String>, key: &str) -> bool {
    q.get(key)
        .map(|v| matches!(v.to_ascii_lowercase().as_str(), "true" | "1" | "yes" | "on"))
        .unwrap_or(false)
}

async fn progress(State(s): St, Query(q): Query<HashMap<String, String>>) -> Response {
    let skip = truthy(&q, "skip_current_image");
    let g = s.lock();
    let state_idle = |job: &str, count: i64| {
        json!({"skipped": false, "interrupted": g.interrupted, "job": job, "job_count": count,
               "job_timestamp": g.job_timestamp, "job_no": 0, "sampling_step": 0,
               "sampling_steps": 0})
    };
    match &g.job {
        Some(job) => {
            let p = job_progress(job);
            let elapsed = job.started.elapsed().as_secs_f64();
            let eta = if p > 0.0 {
                elapsed / p - elapsed
            } else {
                (job.steps * job.job_count) as f64 * g.step_ms as f64 / 1000.0
            };
            let preview = if skip {
                Value::Null
            } else {
                let side = (job.width / 8).clamp(1, 32);
                Value::String(B64.encode(imaging::png(
                    side,
                    (job.height / 8).clamp(1, 32),
                    job.seed.wrapping_add(job.step as u64),
                    None,
                )))
            };
            ok(
                json!({"id": job.id, "progress": p, "eta_relative": round2(eta),
                      "state": {"skipped": false, "interrupted": g.interrupted,
                                "job": "Inference", "job_count": job.job_count,
                                "job_timestamp": g.job_timestamp, "job_no": job.job_no,
                                "sampling_step": job.step, "sampling_steps": job.steps},
                      "current_image": preview, "textinfo": null}),
            )
        }
        None if g.stuck_control => ok(json!({"id": "", "progress": 0.0, "eta_relative": 0.0,
                      "state": state_idle("API-CTL", 1), "current_image": null,
                      "textinfo": null})),
        None => ok(json!({"id": "", "progress": 0.0, "eta_relative": 0.0,
                          "state": state_idle("", 0), "current_image": null,
                          "textinfo": null})),
    }
}

async fn memory() -> Response {
    ok(
        json!({"ram": {"free": 8_000_000_000.5_f64, "used": 1_000_000_000_u64,
                      "total": 9_000_000_000.5_f64},
              "cuda": {"error": "unavailable"}}),
    )
}

async fn log(State(s): St, Query(q): Query<HashMap<String, String>>) -> Response {
    let lines: usize = q.get("lines").and_then(|v| v.parse().ok()).unwrap_or(100);
    let mut g = s.lock();
    let start = g.log.len().saturating_sub(lines);
    let out: Vec<Value> = g.log[start..]
        .iter()
        .map(|l| Value::String(l.clone()))
        .collect();
    if truthy(&q, "clear") {
        g.log.clear();
    }
    ok(Value::Array(out))
}

async fn history(State(s): St) -> Response {
    ok(Value::Array(s.lock().history.clone()))
}

async fn interrupt(State(s): St) -> StatusCode {
    let mut g = s.lock();
    g.stats.interrupts += 1;
    if g.job.is_some() && g.lose_first_interrupt && !g.lost_interrupt_this_job {
        g.lost_interrupt_this_job = true;
        g.stats.interrupts_lost += 1;
    } else {
        g.interrupted = true;
    }
    StatusCode::NO_CONTENT
}

/// `POST /sdapi/v1/control`. SD.Next `058a7f0` answers 500 `control_run() got an unexpected
/// keyword argument 'xyz'` to every request without an `xyz` object (its status then stays
/// "running", task `API-CTL`, until the next job); with `xyz` it runs the plain generation
/// (no grid) and answers `{images, processed, params, info}` with `info` an HTML text and
/// each image's infotext in its JPEG's EXIF. `control_xyz_bug: false` (`/fake/config`) is a
/// fixed SD.Next.
async fn control(State(s): St, body: Bytes) -> Response {
    detached(generate(s, GenKind::Control, body)).await
}

async fn fake_stats(State(s): St) -> Response {
    ok(serde_json::to_value(s.stats()).unwrap_or(Value::Null))
}

async fn fake_reset_stats(State(s): St) -> StatusCode {
    s.reset_stats();
    StatusCode::NO_CONTENT
}

async fn fake_config(State(s): St, body: Bytes) -> Response {
    match serde_json::from_slice::<FakeConfigPatch>(&body) {
        Ok(p) => {
            s.apply_patch(&p);
            ok(json!({"ok": true}))
        }
        Err(e) => json_response(StatusCode::BAD_REQUEST, json!({"error": e.to_string()})),
    }
}

// ---------------------------------------------------------------------------------------------
// Generation

/// Parses a JSON object body, answering like FastAPI on malformed input.
#[allow(clippy::result_large_err)]
fn parse_object(body: &[u8]) -> Result<Map<String, Value>, Response> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(other) => Err(json_response(
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({"detail": [{"type": "model_attributes_type", "loc": ["body"],
                   "msg": "Input should be a valid dictionary or object to extract fields from",
                   "input": other}]}),
        )),
        Err(e) => Err(json_response(
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({"detail": [{"type": "json_invalid", "loc": ["body", e.column()],
                   "msg": "JSON decode error", "input": {},
                   "ctx": {"error": e.to_string()}}]}),
        )),
    }
}

const INT_FIELDS: &[&str] = &[
    "steps",
    "n_iter",
    "batch_size",
    "width",
    "height",
    "seed",
    "subseed",
    "clip_skip",
    "seed_resize_from_h",
    "seed_resize_from_w",
    "hr_second_pass_steps",
    "refiner_steps",
];
const FLOAT_FIELDS: &[&str] = &[
    "cfg_scale",
    "denoising_strength",
    "subseed_strength",
    "cfg_end",
    "cfg_rescale",
];

/// Lax pydantic coercion: integral numbers and numeric strings are integers.
fn as_int(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64().or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e18)
                .map(|f| f as i64)
        }),
        Value::String(s) => s.trim().parse().ok(),
        Value::Bool(b) => Some(i64::from(*b)),
        _ => None,
    }
}

fn as_float(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        Value::Bool(b) => Some(f64::from(u8::from(*b))),
        _ => None,
    }
}

/// FastAPI-style 422 for fields of the wrong type.
fn validate_types(body: &Map<String, Value>) -> Option<Response> {
    let mut errors = Vec::new();
    for f in INT_FIELDS {
        if let Some(v) = body.get(*f)
            && as_int(v).is_none()
        {
            let (ty, msg) = match v {
                Value::String(_) => (
                    "int_parsing",
                    "Input should be a valid integer, unable to parse string as an integer",
                ),
                Value::Number(_) => (
                    "int_from_float",
                    "Input should be a valid integer, got a number with a fractional part",
                ),
                _ => ("int_type", "Input should be a valid integer"),
            };
            errors.push(json!({"type": ty, "loc": ["body", f], "msg": msg, "input": v}));
        }
    }
    for f in FLOAT_FIELDS {
        if let Some(v) = body.get(*f)
            && !v.is_null()
            && as_float(v).is_none()
        {
            let (ty, msg) = match v {
                Value::String(_) => (
                    "float_parsing",
                    "Input should be a valid number, unable to parse string as a number",
                ),
                _ => ("float_type", "Input should be a valid number"),
            };
            errors.push(json!({"type": ty, "loc": ["body", f], "msg": msg, "input": v}));
        }
    }
    if errors.is_empty() {
        None
    } else {
        Some(json_response(
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({ "detail": errors }),
        ))
    }
}

/// A 422 in FastAPI's shape when a request asks for more work than the configured limits.
fn beyond_limits(limits: Option<crate::Limits>, body: &Map<String, Value>) -> Option<Response> {
    let l = limits?;
    let field = |k: &str, default: i64| body.get(k).and_then(as_int).unwrap_or(default);
    let images = field("n_iter", 1)
        .max(1)
        .saturating_mul(field("batch_size", 1).max(1));
    let checks = [
        ("width", field("width", 1024), l.max_side),
        ("height", field("height", 1024), l.max_side),
        ("steps", field("steps", 20), l.max_steps),
        ("n_iter", images, l.max_images),
    ];
    let errors: Vec<Value> = checks
        .iter()
        .filter(|(_, v, max)| *v > *max)
        .map(|(k, v, max)| {
            json!({"type": "less_than_equal", "loc": ["body", k],
                   "msg": format!("Input should be less than or equal to {max}"), "input": v})
        })
        .collect();
    (!errors.is_empty()).then(|| {
        json_response(
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({ "detail": errors }),
        )
    })
}

fn int_field(body: &Map<String, Value>, key: &str, default: i64) -> i64 {
    body.get(key).and_then(as_int).unwrap_or(default)
}

fn str_field<'a>(body: &'a Map<String, Value>, key: &str) -> &'a str {
    body.get(key).and_then(Value::as_str).unwrap_or("")
}

/// The request echo: defaults overlaid with the request's values for known keys.
fn parameters_echo(img2img: bool, body: &Map<String, Value>) -> Value {
    let mut p = json!({
        "sd_model_checkpoint": null, "prompt": "", "negative_prompt": "", "seed": -1,
        "subseed": -1, "subseed_strength": 0, "seed_resize_from_h": -1,
        "seed_resize_from_w": -1, "batch_size": 1, "n_iter": 1, "steps": 20, "clip_skip": 1,
        "width": 1024, "height": 1024, "sampler_index": 0, "sampler_name": "Default",
        "hr_sampler_name": "Same as primary", "eta": null, "cfg_scale": 6.0, "cfg_end": 1,
        "cfg_rescale": 0.0, "styles": null, "tiling": false, "vae_type": "Full",
        "enable_hr": false, "hr_scale": 2.0, "hr_upscaler": null, "refiner_steps": 5,
        "denoising_strength": if img2img { 0.5 } else { 0.3 },
        "override_settings": null, "override_settings_restore_afterwards": true,
        "script_name": "", "script_args": [], "alwayson_scripts": {}, "send_images": true,
        "save_images": false, "samples_format": null, "extra": {}, "ip_adapter": null,
    });
    let obj = p.as_object_mut().expect("object");
    if img2img {
        obj.insert("face_id".into(), Value::Null);
        for (k, v) in [
            ("init_images", Value::Null),
            ("mask", Value::Null),
            ("resize_mode", json!(0)),
            ("scale_by", json!(1)),
            ("mask_blur", json!(4)),
            ("include_init_images", json!(false)),
        ] {
            obj.insert(k.into(), v);
        }
    } else {
        obj.insert("face".into(), Value::Null);
    }
    let keys: Vec<String> = obj.keys().cloned().collect();
    for k in keys {
        if k == "init_images" || k == "mask" {
            continue;
        }
        if let Some(v) = body.get(&k) {
            obj.insert(k, v.clone());
        }
    }
    p
}

struct GenRequest {
    kind: &'static str,
    prompt: String,
    negative: String,
    steps: i64,
    n_iter: i64,
    batch_size: i64,
    width: i64,
    height: i64,
    seed: i64,
    sampler: String,
    cfg: f64,
    denoise: f64,
    send_images: bool,
}

/// Which endpoint a generation came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GenKind {
    Txt2img,
    Img2img,
    Control,
}

async fn txt2img(State(s): St, body: Bytes) -> Response {
    reset_if_asked(detached(generate(s, GenKind::Txt2img, body)).await)
}

async fn img2img(State(s): St, body: Bytes) -> Response {
    reset_if_asked(detached(generate(s, GenKind::Img2img, body)).await)
}

/// Marks a response that must not be sent: the connection is dropped instead.
#[derive(Clone, Copy)]
struct ResetConnection;

/// The `reset` fault: the connection task ends without an answer (the panic is caught by
/// the server's connection task, which closes the socket).
fn reset_if_asked(r: Response) -> Response {
    if r.extensions().get::<ResetConnection>().is_some() {
        panic!("fake SD.Next: `reset` fault: dropping the connection without an answer");
    }
    r
}

/// Serves a fault instead of a normal generation.
async fn serve_fault(s: Arc<Shared>, fault: Fault, steps: i64) -> Response {
    match fault {
        Fault::Reset => {
            let mut r = Response::new(Body::empty());
            r.extensions_mut().insert(ResetConnection);
            r
        }
        Fault::Status { status } => {
            let code = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
            let mut r = Response::new(Body::from(format!(
                "<html><head><title>{code}</title></head><body><h1>{code}</h1></body></html>"
            )));
            *r.status_mut() = code;
            r.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html"));
            r
        }
        Fault::GarbageJson => {
            let mut r = Response::new(Body::from("{\"images\": [\"iVBORw0KGgo\", <html>oops"));
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            r
        }
        Fault::DropMidBody => {
            let png = B64.encode(imaging::png(8, 8, 1, None));
            let full = json!({"images": [png], "parameters": {}, "info": ""}).to_string();
            let half = Bytes::from(full.as_bytes()[..full.len() / 2].to_vec());
            let chunks: Vec<Result<Bytes, std::io::Error>> = vec![
                Ok(half),
                Err(std::io::Error::other("fake SD.Next: drop_mid_body fault")),
            ];
            let mut r = Response::new(Body::from_stream(futures::stream::iter(chunks)));
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            r.headers_mut()
                .insert(header::CONTENT_LENGTH, HeaderValue::from(full.len()));
            r
        }
        Fault::HugeAnswer { mib } => huge_answer(mib),
        Fault::HangHonoursInterrupt | Fault::HangIgnoresInterrupt | Fault::FrozenProgress => {
            hung_job(s, fault, steps).await
        }
        // Not served here: a held job is a normal job that waits (see `generate`).
        Fault::Hold => http_exception(500, "fake SD.Next: a hold is not served as a fault"),
    }
}

/// `{"images": ["AAAA…"], …}` with `mib` MiB of base64, streamed in 1 MiB chunks.
fn huge_answer(mib: u64) -> Response {
    const HEAD: &str = "{\"images\": [\"";
    const TAIL: &str = "\"], \"parameters\": {}, \"info\": \"\"}";
    let chunk = Bytes::from(vec![b'A'; 1 << 20]);
    let total = HEAD.len() as u64 + (mib << 20) + TAIL.len() as u64;
    let parts = std::iter::once(Bytes::from_static(HEAD.as_bytes()))
        .chain(std::iter::repeat_n(chunk, mib as usize))
        .chain(std::iter::once(Bytes::from_static(TAIL.as_bytes())))
        .map(Ok::<Bytes, std::io::Error>);
    let mut r = Response::new(Body::from_stream(futures::stream::iter(parts)));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r.headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from(total));
    r
}

/// A job that holds the global lock and never answers normally (see the hang faults).
async fn hung_job(s: Arc<Shared>, fault: Fault, steps: i64) -> Response {
    let _queue = s.gen_lock.lock().await;
    let (step_ms, epoch) = {
        let mut g = s.lock();
        let id = g.random_id();
        g.interrupted = false;
        g.total_jobs += 1;
        g.concurrent += 1;
        let c = g.concurrent;
        g.stats.max_concurrent_jobs = g.stats.max_concurrent_jobs.max(c);
        g.job = Some(Job {
            id,
            job_count: 1,
            job_no: 0,
            step: 1,
            steps,
            started: std::time::Instant::now(),
            width: 64,
            height: 64,
            seed: 1,
        });
        (g.step_ms.max(1), g.hang_epoch)
    };
    let end_job = |s: &Shared| {
        let mut g = s.lock();
        if g.job.take().is_some() {
            g.concurrent -= 1;
        }
    };
    loop {
        tokio::time::sleep(Duration::from_millis(step_ms)).await;
        let mut g = s.lock();
        if g.hang_epoch != epoch {
            drop(g);
            end_job(&s);
            return http_exception(500, "hung job released");
        }
        let interrupted = g.interrupted;
        match fault {
            Fault::FrozenProgress if interrupted => {
                drop(g);
                end_job(&s);
                let png = B64.encode(imaging::png(8, 8, 0, None));
                return ok(json!({"images": [png], "parameters": {}, "info": ""}));
            }
            Fault::HangHonoursInterrupt if interrupted => {
                drop(g);
                end_job(&s);
                break;
            }
            Fault::HangHonoursInterrupt => {
                if let Some(j) = g.job.as_mut() {
                    j.step = (j.step + 1).min(j.steps);
                }
            }
            _ => {}
        }
    }
    // The job is over but the request never answers (until `release_hangs`).
    drop(_queue);
    loop {
        tokio::time::sleep(Duration::from_millis(step_ms)).await;
        if s.lock().hang_epoch != epoch {
            return http_exception(500, "hung request released");
        }
    }
}

/// Control's own field names for what txt2img calls `n_iter`, `width` and `height`.
fn control_as_txt2img(body: &mut Map<String, Value>) {
    for (from, to) in [
        ("batch_count", "n_iter"),
        ("width_before", "width"),
        ("height_before", "height"),
    ] {
        match body.remove(from) {
            Some(v) => {
                body.insert(to.into(), v);
            }
            None => {
                body.remove(to);
            }
        }
    }
}

/// Control's HTML `info` for one image's infotext (`prompt\nNegative…\nSteps: …`).
fn control_info_html(prompt: &str, infotext: &str) -> String {
    let params = infotext
        .lines()
        .last()
        .unwrap_or_default()
        .replace(", ", "| ");
    format!("<p><b>Prompt:</b> {prompt}</p><p><b>Parameters:</b> {params}</p>")
}

/// Like SD.Next's worker threads, a job runs to its end even when the client goes away
/// (e.g. the host is SIGKILLed): the answer is then simply not delivered.
async fn detached(job: impl std::future::Future<Output = Response> + Send + 'static) -> Response {
    match tokio::spawn(job).await {
        Ok(r) => r,
        Err(e) => json_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({"error": "JoinError", "code": 500, "detail": e.to_string(), "body": "",
                   "errors": e.to_string()}),
        ),
    }
}

/// Loads model `idx` under the already held global lock.
async fn load_locked(s: &Shared, idx: usize) {
    let ms = s.lock().load_ms;
    tokio::time::sleep(Duration::from_millis(ms)).await;
    s.lock().mark_loaded(idx);
}

async fn generate(s: Arc<Shared>, kind: GenKind, body: Bytes) -> Response {
    let img2img = kind == GenKind::Img2img;
    let control = kind == GenKind::Control;
    let received_us = s.now_us();
    let mut body = match parse_object(&body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let mut units: Vec<String> = Vec::new();
    if control {
        let had_xyz = body.get("xyz").is_some_and(|x| !x.is_null());
        let bug = s.lock().control_xyz_bug;
        s.lock().stats.control_requests.push(ControlRecord {
            had_xyz,
            units: body
                .get("control")
                .and_then(Value::as_array)
                .map_or(0, Vec::len),
            refused: bug && !had_xyz,
        });
        if bug && !had_xyz {
            s.lock().stuck_control = true;
            return json_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                json!({"error": "TypeError", "code": 500, "detail": "", "body": "",
                       "errors": "control_run() got an unexpected keyword argument 'xyz'"}),
            );
        }
        for (k, u) in body
            .get("control")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
            .iter()
            .enumerate()
        {
            let has_image = ["image", "override"].iter().any(|f| {
                u.get(*f)
                    .and_then(Value::as_str)
                    .is_some_and(|s| !s.is_empty())
            });
            if !has_image {
                s.lock()
                    .log_line("ERROR", &format!("Control: unit={k} no input image"));
                continue;
            }
            units.push(
                u.get("model")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned(),
            );
        }
        control_as_txt2img(&mut body);
    }
    if let Some(r) = validate_types(&body) {
        return r;
    }
    if img2img {
        let has_init = body
            .get("init_images")
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty());
        if !has_init {
            return json_response(
                StatusCode::BAD_REQUEST,
                json!({"error": "Init image is none"}),
            );
        }
    }
    let sampler = match body.get("sampler_name") {
        None => "Default".to_string(),
        Some(Value::String(n)) if n.eq_ignore_ascii_case("default") => "Default".to_string(),
        Some(Value::String(n)) => match SAMPLERS.iter().find(|s| s.eq_ignore_ascii_case(n)) {
            Some(found) => found.to_string(),
            None => return http_exception(404, "Sampler not found"),
        },
        Some(_) => return http_exception(404, "Sampler not found"),
    };
    if let Some(Value::Object(scripts)) = body.get("alwayson_scripts") {
        for title in scripts.keys() {
            if !ALWAYSON.iter().any(|a| a.eq_ignore_ascii_case(title)) {
                return http_exception(422, &format!("Always on script not found: {title}"));
            }
        }
    }
    {
        let mut g = s.lock();
        if g.rate_limit_next > 0 {
            g.rate_limit_next -= 1;
            let retry = g.rate_limit_retry_after;
            drop(g);
            let mut r = json_response(
                StatusCode::TOO_MANY_REQUESTS,
                json!({"error": "HTTPException", "code": 429, "detail": "Too Many Requests",
                       "body": "", "errors": "429: Too Many Requests"}),
            );
            if let Some(secs) = retry {
                r.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(secs));
            }
            return r;
        }
    }
    if let Some(r) = beyond_limits(s.lock().limits, &body) {
        return r;
    }
    let req = GenRequest {
        kind: match kind {
            GenKind::Txt2img => "txt2img",
            GenKind::Img2img => "img2img",
            GenKind::Control => "control",
        },
        prompt: str_field(&body, "prompt").to_string(),
        negative: str_field(&body, "negative_prompt").to_string(),
        steps: int_field(&body, "steps", 20).max(1),
        n_iter: int_field(&body, "n_iter", 1).max(1),
        batch_size: int_field(&body, "batch_size", 1).max(1),
        width: int_field(&body, "width", 1024),
        height: int_field(&body, "height", 1024),
        seed: int_field(&body, "seed", -1),
        sampler,
        cfg: body.get("cfg_scale").and_then(as_float).unwrap_or(6.0),
        denoise: body
            .get("denoising_strength")
            .and_then(as_float)
            .unwrap_or(if img2img { 0.5 } else { 0.3 }),
        send_images: body
            .get("send_images")
            .and_then(Value::as_bool)
            .unwrap_or(true),
    };
    let fault = s.lock().take_fault(&req.prompt);
    let hold = fault == Some(Fault::Hold);
    if let Some(f) = fault.filter(|_| !hold) {
        return serve_fault(s, f, req.steps).await;
    }
    let parameters = parameters_echo(img2img, &body);

    let _queue = s.gen_lock.lock().await;
    let started_us = s.now_us();

    // Model selection: top-level field (permanent), override_settings (restored afterwards).
    let top = body
        .get("sd_model_checkpoint")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .map(str::to_string);
    let over = body
        .get("override_settings")
        .and_then(|o| o.get("sd_model_checkpoint"))
        .and_then(Value::as_str)
        .map(str::to_string);
    let restore_after = body
        .get("override_settings_restore_afterwards")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    let mut empty = {
        let mut g = s.lock();
        g.stuck_control = false;
        if g.fail_next_with_empty > 0 {
            g.fail_next_with_empty -= 1;
            true
        } else {
            false
        }
    };
    if !empty && let Some(t) = &top {
        let (idx, loaded) = {
            let g = s.lock();
            (g.find_fuzzy(t), g.loaded)
        };
        match idx {
            None => {
                s.lock()
                    .log_line("WARNING", &format!("Load model: search=\"{t}\" not found"));
                empty = true;
            }
            Some(i) if Some(i) != loaded => load_locked(&s, i).await,
            Some(_) => {}
        }
    }
    let mut restore: Option<usize> = None;
    if !empty && let Some(o) = &over {
        let (idx, loaded) = {
            let g = s.lock();
            (g.find_exact(o), g.loaded)
        };
        match idx {
            Some(i) if Some(i) != loaded => {
                load_locked(&s, i).await;
                if restore_after {
                    restore = loaded;
                }
            }
            Some(_) => {}
            None => s.lock().log_line(
                "WARNING",
                &format!("Override: checkpoint=\"{o}\" not found, ignored"),
            ),
        }
    }
    let checkpoint = {
        let mut g = s.lock();
        match g.loaded {
            None => {
                g.log_line("WARNING", "Aborted: op=process model not loaded");
                empty = true;
                None
            }
            Some(i) => Some(i),
        }
    };

    if empty {
        let responded_us = s.now_us();
        let mut g = s.lock();
        let checkpoint = checkpoint.map(|i| g.models[i].title.clone());
        g.stats.generations.push(GenerationRecord {
            kind: req.kind.into(),
            prompt: req.prompt.clone(),
            checkpoint,
            received_us,
            started_us,
            responded_us,
            images: 0,
            interrupted: false,
            empty: true,
        });
        return ok(json!({"images": [], "parameters": parameters, "info": ""}));
    }
    let checkpoint = checkpoint.expect("checked above");

    // Begin the job.
    let count = (req.n_iter * req.batch_size) as usize;
    let (job_id, model_short, model_title, base_seed, subseed, step_ms) = {
        let mut g = s.lock();
        let id = g.random_id();
        let base_seed = if req.seed < 0 {
            (g.next_u64() % 4_294_967_295) as i64
        } else {
            req.seed
        };
        let subseed = (g.next_u64() % 4_294_967_295) as i64;
        g.interrupted = false;
        g.lost_interrupt_this_job = false;
        g.job_timestamp = timestamp_string();
        g.total_jobs += 1;
        g.concurrent += 1;
        let c = g.concurrent;
        g.stats.max_concurrent_jobs = g.stats.max_concurrent_jobs.max(c);
        g.stats.prompts.push(req.prompt.clone());
        g.job = Some(Job {
            id: id.clone(),
            job_count: req.n_iter,
            job_no: 0,
            step: 0,
            steps: req.steps,
            started: std::time::Instant::now(),
            width: req.width.max(8) as u32,
            height: req.height.max(8) as u32,
            seed: base_seed as u64,
        });
        let job_name = match kind {
            GenKind::Txt2img => "api-txt",
            GenKind::Img2img => "api-img",
            GenKind::Control => "api-ctl",
        };
        g.history_event(&id, job_name, "begin", None);
        let m = &g.models[checkpoint];
        (
            id,
            m.short_name().to_string(),
            m.title.clone(),
            base_seed,
            subseed,
            g.step_ms,
        )
    };

    let mut interrupted = false;
    'outer: for it in 0..req.n_iter {
        for step in 1..=req.steps {
            if s.lock().interrupted {
                interrupted = true;
                break 'outer;
            }
            if step_ms > 0 {
                tokio::time::sleep(Duration::from_millis(step_ms)).await;
            } else {
                tokio::task::yield_now().await;
            }
            let mut g = s.lock();
            if let Some(job) = g.job.as_mut() {
                job.job_no = it;
                job.step = step;
            }
        }
    }
    if hold {
        // At its last step until the test lets it go; an interrupt meanwhile is seen after.
        s.hold(&req.prompt).await;
    }
    if s.lock().interrupted {
        interrupted = true;
    }

    // Images.
    let (format_png, job_timestamp) = {
        let g = s.lock();
        (
            g.samples_format.as_deref() == Some("png"),
            g.job_timestamp.clone(),
        )
    };
    let w8 = (req.width.max(8) / 8 * 8) as u32;
    let h8 = (req.height.max(8) / 8 * 8) as u32;
    let seeds: Vec<i64> = (0..count as i64).map(|i| base_seed + i).collect();
    let infotext = |i: usize| {
        let mut t = format!(
            "{p}\nNegative prompt: {n}\nTemplate: {p}\nSteps: {st}, Size: {w8}x{h8}, ",
            p = req.prompt,
            n = req.negative,
            st = req.steps
        );
        if req.sampler != "Default" {
            t.push_str(&format!("Sampler: {}, ", req.sampler));
        }
        t.push_str(&format!(
            "Scheduler: PNDMScheduler, Seed: {}, CFG scale: {:?}, CFG rescale: 0.0, ",
            seeds[i], req.cfg
        ));
        if count > 1 {
            t.push_str(&format!("Batch: {}x{}, ", req.n_iter, req.batch_size));
        }
        t.push_str(&format!(
            "App: SD.Next, Version: fake, Pipeline: {}, Operations: {}, Model: {}",
            if img2img {
                "StableDiffusionImg2ImgPipeline"
            } else if control && !units.is_empty() {
                "StableDiffusionControlNetPipeline"
            } else {
                "StableDiffusionPipeline"
            },
            if control {
                "txt2img; control"
            } else {
                req.kind
            },
            model_short
        ));
        if control && !units.is_empty() {
            t.push_str(&format!(
                ", Control type: ControlNet, Control model: {}",
                units.join(", ")
            ));
        }
        if img2img {
            t.push_str(&format!(", Denoising strength: {}", req.denoise));
        }
        if count > 1 {
            let bs = req.batch_size as usize;
            t.push_str(&format!(", Index: {}x{}", i / bs + 1, i % bs + 1));
        }
        t
    };
    let encode = |w: u32, h: u32, seed: u64, text: &str| {
        if format_png {
            imaging::png(w, h, seed, Some(text))
        } else if control {
            // Control answers carry the infotext only in the JPEG's EXIF.
            imaging::jpeg_with_user_comment(w, h, seed, text)
        } else {
            imaging::jpeg(w, h, seed)
        }
    };
    let (images, infotexts): (Vec<Vec<u8>>, Vec<String>) = if interrupted {
        let t = infotext(0);
        let img = encode(
            (req.width.max(8) / 8) as u32,
            (req.height.max(8) / 8) as u32,
            0,
            &t,
        );
        (vec![img], vec![t.clone(), t])
    } else {
        // Tiny images: the requested size scaled down to fit 64×64, aspect kept.
        let (w, h) = fit_within(w8, h8, 64);
        let texts: Vec<String> = (0..count).map(infotext).collect();
        let imgs = (0..count)
            .map(|i| encode(w, h, seeds[i] as u64, &texts[i]))
            .collect();
        (imgs, texts)
    };
    let shown_seeds: Vec<i64> = if interrupted {
        vec![base_seed]
    } else {
        seeds.clone()
    };
    let info = json!({
        "prompt": req.prompt, "all_prompts": vec![req.prompt.clone(); shown_seeds.len()],
        "negative_prompt": req.negative,
        "all_negative_prompts": vec![req.negative.clone(); shown_seeds.len()],
        "seed": base_seed, "all_seeds": shown_seeds, "subseed": subseed,
        "all_subseeds": (0..shown_seeds.len() as i64).map(|i| subseed + i).collect::<Vec<_>>(),
        "subseed_strength": 0, "width": req.width, "height": req.height,
        "sampler_name": req.sampler, "cfg_scale": req.cfg, "cfg_end": null, "steps": req.steps,
        "batch_size": req.batch_size, "detailer": false, "detailer_model": null,
        "sd_model_hash": null, "seed_resize_from_w": -1, "seed_resize_from_h": -1,
        "denoising_strength": req.denoise, "extra_generation_params": {},
        "index_of_first_image": 0, "infotexts": infotexts, "styles": [],
        "job_timestamp": job_timestamp, "clip_skip": 1,
    });
    let n_images = if req.send_images { images.len() } else { 0 };
    let images_b64: Vec<Value> = if req.send_images {
        images
            .iter()
            .map(|b| Value::String(B64.encode(b)))
            .collect()
    } else {
        Vec::new()
    };

    // End the job, then restore an override's model (the second load).
    {
        let mut g = s.lock();
        let dur = g
            .job
            .take()
            .map(|j| round2(j.started.elapsed().as_secs_f64()));
        g.concurrent -= 1;
        let job_name = match kind {
            GenKind::Txt2img => "api-txt",
            GenKind::Img2img => "api-img",
            GenKind::Control => "api-ctl",
        };
        g.history_event(&job_id, job_name, "end", dur);
    }
    if let Some(prev) = restore {
        load_locked(&s, prev).await;
    }
    let response = if control {
        // One preprocessor map per unit, twice (the preprocessing step and the result).
        let maps: Vec<Value> = units
            .iter()
            .enumerate()
            .flat_map(|(k, _)| {
                let m = Value::String(B64.encode(imaging::jpeg(16, 16, 1000 + k as u64)));
                [m.clone(), m]
            })
            .collect();
        let html = infotexts
            .first()
            .map(|t| control_info_html(&req.prompt, t))
            .unwrap_or_default();
        let send = req.send_images;
        ok(
            json!({"images": images_b64, "processed": if send { maps } else { vec![] },
                  "params": Value::Object(body.clone()), "info": html}),
        )
    } else {
        ok(json!({"images": images_b64, "parameters": parameters,
                  "info": info.to_string()}))
    };
    let responded_us = s.now_us();
    s.lock().stats.generations.push(GenerationRecord {
        kind: req.kind.into(),
        prompt: req.prompt,
        checkpoint: Some(model_title),
        received_us,
        started_us,
        responded_us,
        images: n_images,
        interrupted,
        empty: false,
    });
    response
}
