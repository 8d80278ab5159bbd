//! Shared mutable state of the fake: models, options, the running job, statistics.

use std::sync::Mutex;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};

use crate::{FakeConfig, FakeConfigPatch, FakeStats, Fault, FaultRule, RequestRecord};

/// One checkpoint the fake lists.
#[derive(Debug, Clone)]
pub(crate) struct Model {
    /// `name` plus ` [hash]` when a hash is known.
    pub title: String,
    /// Path-like name without extension, e.g. `anime/a`.
    pub name: String,
    /// Full file path.
    pub filename: String,
    /// Short hash, if any.
    pub hash: Option<String>,
}

impl Model {
    pub fn from_spec(spec: &str) -> Model {
        let spec = spec.trim();
        let (name, hash) = match (spec.rfind(" ["), spec.ends_with(']')) {
            (Some(i), true) => (
                spec[..i].to_string(),
                Some(spec[i + 2..spec.len() - 1].to_string()),
            ),
            _ => (spec.to_string(), None),
        };
        let title = match &hash {
            Some(h) => format!("{name} [{h}]"),
            None => name.clone(),
        };
        Model {
            filename: format!("/srv/fake/models/Stable-diffusion/{name}.safetensors"),
            title,
            name,
            hash,
        }
    }

    /// Last path segment of the name (what the infotext shows as `Model:`).
    pub fn short_name(&self) -> &str {
        self.name.rsplit(['/', '\\']).next().unwrap_or(&self.name)
    }

    /// Exact aliases (what `override_settings.sd_model_checkpoint` accepts).
    pub fn exact_alias(&self, s: &str) -> bool {
        s == self.title || s == self.name || s == self.filename || self.hash.as_deref() == Some(s)
    }

    /// Fuzzy match used by `/options` and the top-level request field.
    pub fn fuzzy_alias(&self, s: &str) -> bool {
        if self.exact_alias(s) {
            return true;
        }
        let base = s.rsplit(['/', '\\']).next().unwrap_or(s);
        let base = base.strip_suffix(".safetensors").unwrap_or(base);
        base == self.short_name()
    }

    pub fn sd_models_json(&self) -> Value {
        json!({
            "title": self.title,
            "model_name": self.name,
            "filename": self.filename,
            "type": "safetensors",
            "sha256": Value::Null,
            "hash": self.hash,
            "config": Value::Null,
        })
    }
}

/// The job that holds the global lock.
#[derive(Debug, Clone)]
pub(crate) struct Job {
    pub id: String,
    pub job_count: i64,
    pub job_no: i64,
    pub step: i64,
    pub steps: i64,
    pub started: Instant,
    pub width: u32,
    pub height: u32,
    pub seed: u64,
}

pub(crate) struct Inner {
    pub limits: Option<crate::Limits>,
    pub step_ms: u64,
    pub load_ms: u64,
    pub lose_first_interrupt: bool,
    pub fail_next_with_empty: u32,
    pub rate_limit_next: u32,
    pub rate_limit_retry_after: Option<u64>,
    pub auth: Option<(String, String)>,
    pub models: Vec<Model>,
    pub vaes: Vec<String>,
    /// Index into `models`; `None` = nothing loaded.
    pub loaded: Option<usize>,
    /// Value of the `sd_model_checkpoint` option (keeps a bad name after an unload).
    pub option_checkpoint: String,
    pub samples_format: Option<String>,
    pub options: Map<String, Value>,
    pub job: Option<Job>,
    /// `state.interrupted`.
    pub interrupted: bool,
    pub lost_interrupt_this_job: bool,
    pub job_timestamp: String,
    /// After the `/control` 500 the status stays "running" until the next job.
    pub stuck_control: bool,
    /// `/control` refuses requests without `xyz` (SD.Next `058a7f0`).
    pub control_xyz_bug: bool,
    /// What `/openapi.json` serves (404 when `None`).
    pub openapi: Option<Value>,
    pub rng: u64,
    pub stats: FakeStats,
    pub log: Vec<String>,
    pub history: Vec<Value>,
    pub total_jobs: u64,
    pub concurrent: u32,
    pub faults: Vec<FaultRule>,
    /// Bumped by `release_hangs`: hung jobs end when it changes.
    pub hang_epoch: u64,
    /// Checkpoint loads still to hold.
    pub hold_loads: u32,
    /// What waits for a release: `(id, name)`, in the order each began to wait.
    pub held: Vec<(u64, String)>,
    /// The id of the last hold.
    pub last_hold: u64,
}

pub(crate) struct Shared {
    pub start: Instant,
    /// SD.Next's `queue_lock`: generation and model loads.
    pub gen_lock: tokio::sync::Mutex<()>,
    pub inner: Mutex<Inner>,
    /// Bumped whenever something held is released.
    pub releases: tokio::sync::watch::Sender<u64>,
}

impl Shared {
    pub fn new(cfg: &FakeConfig) -> Shared {
        let models: Vec<Model> = cfg
            .checkpoints
            .iter()
            .map(|s| Model::from_spec(s))
            .collect();
        let loaded = cfg
            .loaded
            .as_deref()
            .and_then(|l| models.iter().position(|m| m.fuzzy_alias(l)));
        let option_checkpoint = loaded
            .map(|i| models[i].title.clone())
            .or_else(|| cfg.loaded.clone())
            .unwrap_or_default();
        let seed = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0x9E37_79B9_7F4A_7C15)
            | 1;
        let mut inner = Inner {
            limits: cfg.limits,
            step_ms: cfg.step_ms,
            load_ms: cfg.load_ms,
            lose_first_interrupt: cfg.lose_first_interrupt,
            fail_next_with_empty: 0,
            rate_limit_next: 0,
            rate_limit_retry_after: None,
            auth: cfg.auth.clone(),
            models,
            vaes: cfg.vaes.clone(),
            loaded,
            option_checkpoint,
            samples_format: None,
            options: default_options(),
            job: None,
            interrupted: false,
            lost_interrupt_this_job: false,
            job_timestamp: timestamp_string(),
            stuck_control: false,
            control_xyz_bug: true,
            openapi: cfg.openapi.clone(),
            rng: seed,
            stats: FakeStats::default(),
            log: Vec::new(),
            history: Vec::new(),
            total_jobs: 0,
            concurrent: 0,
            faults: Vec::new(),
            hang_epoch: 0,
            hold_loads: 0,
            held: Vec::new(),
            last_hold: 0,
        };
        inner.sync_stats();
        inner.log_line("INFO", "Startup: fake SD.Next");
        Shared {
            start: Instant::now(),
            gen_lock: tokio::sync::Mutex::new(()),
            inner: Mutex::new(inner),
            releases: tokio::sync::watch::channel(0).0,
        }
    }

    /// Waits, listed as `name` in [`FakeStats::held`], until [`Shared::release`] lets it go.
    pub async fn hold(&self, name: &str) {
        let id = {
            let mut g = self.lock();
            g.last_hold += 1;
            let id = g.last_hold;
            g.held.push((id, name.to_owned()));
            id
        };
        let mut released = self.releases.subscribe();
        while self.lock().held.iter().any(|(i, _)| *i == id) {
            if released.changed().await.is_err() {
                return;
            }
        }
    }

    /// Lets everything held as `name` go (`*`: everything).
    pub fn release(&self, name: &str) {
        self.lock().held.retain(|(_, n)| name != "*" && n != name);
        self.releases.send_modify(|v| *v += 1);
    }

    /// Whether the next checkpoint load is held (counts it).
    pub fn take_load_hold(&self) -> bool {
        let mut g = self.lock();
        let hold = g.hold_loads > 0;
        g.hold_loads = g.hold_loads.saturating_sub(1);
        hold
    }

    pub fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn now_us(&self) -> u64 {
        self.start.elapsed().as_micros() as u64
    }

    pub fn record_request(&self, method: &str, path: &str) {
        let t_us = self.now_us();
        self.lock().stats.requests.push(RequestRecord {
            method: method.to_string(),
            path: path.to_string(),
            t_us,
        });
    }

    pub fn stats(&self) -> FakeStats {
        let mut g = self.lock();
        g.sync_stats();
        g.stats.clone()
    }

    pub fn reset_stats(&self) {
        let mut g = self.lock();
        g.stats = FakeStats::default();
        g.sync_stats();
    }

    pub fn apply_patch(&self, p: &FakeConfigPatch) {
        let mut g = self.lock();
        if let Some(v) = p.step_ms {
            g.step_ms = v;
        }
        if let Some(v) = p.load_ms {
            g.load_ms = v;
        }
        if let Some(v) = p.lose_first_interrupt {
            g.lose_first_interrupt = v;
        }
        if let Some(v) = p.fail_next_with_empty {
            g.fail_next_with_empty = v.count();
        }
        if let Some(v) = p.rate_limit_next {
            g.rate_limit_next = v.count();
        }
        if p.rate_limit_retry_after.is_some() {
            g.rate_limit_retry_after = p.rate_limit_retry_after;
        }
        if let Some(rules) = &p.faults {
            g.faults = rules.clone();
        }
        if p.release_hangs == Some(true) {
            g.hang_epoch += 1;
        }
        if let Some(v) = &p.vaes {
            g.vaes = v.clone();
        }
        if let Some(v) = &p.openapi {
            g.openapi = Some(v.clone());
        }
        if let Some(v) = p.control_xyz_bug {
            g.control_xyz_bug = v;
        }
        if let Some(v) = p.hold_loads {
            g.hold_loads = v.count();
        }
        if let Some(list) = &p.checkpoints {
            let loaded_title = g.loaded.map(|i| g.models[i].title.clone());
            g.models = list.iter().map(|s| Model::from_spec(s)).collect();
            g.loaded = loaded_title.and_then(|t| g.models.iter().position(|m| m.title == t));
        }
        drop(g);
        if let Some(name) = &p.release_held {
            self.release(name);
        }
    }

    /// Sets `interrupted` (used when the in-process fake stops).
    pub fn interrupt_all(&self) {
        self.lock().interrupted = true;
    }
}

impl Inner {
    /// The fault a generation request with `prompt` runs into, if any (consumes one use).
    pub fn take_fault(&mut self, prompt: &str) -> Option<Fault> {
        let i = self
            .faults
            .iter()
            .position(|r| r.prompt.as_deref().is_none_or(|p| p == prompt))?;
        let fault = self.faults[i].fault.clone();
        if let Some(n) = self.faults[i].count.as_mut() {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.faults.remove(i);
            }
        }
        self.stats.faulted_prompts.push(prompt.to_owned());
        Some(fault)
    }

    pub fn sync_stats(&mut self) {
        self.stats.held = self.held.iter().map(|(_, n)| n.clone()).collect();
        self.stats.loaded = self.loaded.map(|i| self.models[i].title.clone());
        self.stats.samples_format = self.samples_format.clone();
    }

    pub fn next_u64(&mut self) -> u64 {
        // xorshift64*
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn random_id(&mut self) -> String {
        format!("{:015x}", self.next_u64() & 0x0fff_ffff_ffff_ffff)
    }

    pub fn find_fuzzy(&self, s: &str) -> Option<usize> {
        self.models
            .iter()
            .position(|m| m.exact_alias(s))
            .or_else(|| self.models.iter().position(|m| m.fuzzy_alias(s)))
    }

    pub fn find_exact(&self, s: &str) -> Option<usize> {
        self.models.iter().position(|m| m.exact_alias(s))
    }

    pub fn log_line(&mut self, level: &str, msg: &str) {
        let created = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        let line = json!({
            "created": created,
            "facility": "sd",
            "level": level,
            "module": "fake",
            "msg": msg,
        })
        .to_string();
        self.log.push(line);
        if self.log.len() > 1000 {
            self.log.remove(0);
        }
    }

    pub fn history_event(&mut self, id: &str, job: &str, op: &str, duration: Option<f64>) {
        let ts = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        self.history.push(json!({
            "id": id, "job": job, "op": op, "timestamp": ts,
            "duration": duration, "outputs": [],
        }));
        if self.history.len() > 10_000 {
            self.history.remove(0);
        }
    }

    /// Records a load of model `idx` (the caller has waited `load_ms` under the global lock).
    pub fn mark_loaded(&mut self, idx: usize) {
        let title = self.models[idx].title.clone();
        self.loaded = Some(idx);
        self.option_checkpoint = title.clone();
        self.stats.checkpoint_loads += 1;
        self.stats.loads.push(title.clone());
        self.log_line("INFO", &format!("Load model: {title}"));
        self.sync_stats();
    }

    pub fn mark_unloaded(&mut self, wanted: &str) {
        self.loaded = None;
        self.option_checkpoint = wanted.to_string();
        self.stats.unloads += 1;
        self.log_line(
            "WARNING",
            &format!("Load model: search=\"{wanted}\" not found"),
        );
        self.sync_stats();
    }

    pub fn options_json(&self) -> Value {
        let mut m = Map::new();
        m.insert(
            "sd_model_checkpoint".into(),
            Value::String(self.option_checkpoint.clone()),
        );
        for (k, v) in &self.options {
            m.insert(k.clone(), v.clone());
        }
        if let Some(f) = &self.samples_format {
            m.insert("samples_format".into(), Value::String(f.clone()));
        }
        let hash = self.loaded.and_then(|i| self.models[i].hash.clone());
        m.insert("sd_checkpoint_hash".into(), json!(hash));
        Value::Object(m)
    }
}

/// `YYYYMMDDhhmmss` in UTC, like SD.Next's `job_timestamp`.
pub(crate) fn timestamp_string() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // civil-from-days (Howard Hinnant's algorithm)
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{:04}{:02}{:02}{:02}{:02}{:02}",
        y,
        m,
        d,
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// The options a fresh SD.Next reports (the keys of `opts.data`, §6.2 of the reference):
/// `samples_format` is absent until set.
fn default_options() -> Map<String, Value> {
    let root = "/srv/fake";
    let mut m = Map::new();
    let mut put = |k: &str, v: Value| {
        m.insert(k.to_string(), v);
    };
    put("sd_checkpoint_autoload", json!(true));
    put("sd_checkpoint_autodownload", json!(false));
    put("offline_mode", json!(true));
    put("show_progress_type", json!("Simple"));
    put("theme_type", json!("Modern"));
    put("server_rate_limit", json!(0));
    put("diffusers_offload_mode", json!("none"));
    put("cuda_dtype", json!("FP32"));
    put("motd", json!(false));
    put("clip_skip", json!(1));
    put("uni_pc_lower_order_final", json!(true));
    put("uni_pc_order", json!(2));
    for (k, sub) in [
        ("styles_dir", "models/styles"),
        ("ckpt_dir", "models/Stable-diffusion"),
        ("diffusers_dir", "models/Diffusers"),
        ("hfcache_dir", "models/huggingface"),
        ("xetcache_dir", "models/xet"),
        ("vae_dir", "models/VAE"),
        ("unet_dir", "models/UNET"),
        ("te_dir", "models/Text-encoder"),
        ("lora_dir", "models/Lora"),
        ("tunable_dir", "models/tunable"),
        ("embeddings_dir", "models/embeddings"),
        ("onnx_temp_dir", "models/ONNX/temp"),
        ("outdir_txt2img_samples", "outputs/text"),
        ("outdir_img2img_samples", "outputs/image"),
        ("outdir_control_samples", "outputs/control"),
        ("outdir_extras_samples", "outputs/extras"),
        ("outdir_init_images", "outputs/inputs"),
        ("outdir_save", "outputs/save"),
        ("outdir_video", "outputs/video"),
        ("outdir_txt2img_grids", "outputs/grids"),
        ("outdir_img2img_grids", "outputs/grids"),
        ("outdir_control_grids", "outputs/grids"),
        ("yolo_dir", "models/yolo"),
        ("wildcards_dir", "models/wildcards"),
        ("autocomplete_dir", "models/autocomplete"),
    ] {
        put(k, json!(format!("{root}/{sub}")));
    }
    put("gradio_theme", json!("Default"));
    put("ui_disabled", json!([]));
    m
}
