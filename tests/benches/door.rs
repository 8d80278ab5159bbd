//! The figures of issue 15 for the door (findings 1 and 3), against the real binaries of
//! the same profile (release for `cargo bench`) and, for the check itself, in-process:
//!
//! 1. the time to check an enqueue against the request contract (`Contract::check`:
//!    types by the committed table, the crash checks, names against lists the size of a
//!    real SD.Next's), p50/p99, for a typical txt2img request, one with every txt2img
//!    field set, and a Control request with two units; and the enqueue round trip over
//!    HTTP to a paused host (which includes that check), p50/p99;
//! 2. the host's peak RSS (VmHWM of the process) for a 60 MB `/import` body of 30 million
//!    tiny items (`[0,0,…]`): with the default cap (413 at item 10,001), with the cap at
//!    its largest (1,000,000: 413 after a million items), a 58 MB body of a million items
//!    the contract rejects (all read, counted, the first 1000 listed), and a 60 MB body of
//!    100,000 valid tasks with long prompts (all imported). A fresh host for each.
//!
//! Run: `cargo build --release --workspace --bins && cargo bench -p scheduler-tests --bench door`
//! (`BENCH=check` or `BENCH=import` runs one part).

use std::sync::Arc;
use std::time::{Duration, Instant};

use agent_scheduler::model::contract::{self, Contract, Names};
use scheduler_api::client::{Client, Method};
use scheduler_api::{EnqueueRequest, SettingsPatch, TaskType, routes};
use scheduler_tests::fake_args::FakeArgs;
use scheduler_tests::harness::{FakeProcess, HostProcess, wait_until};
use serde_json::{Map, Value, json};

const LONG: Duration = Duration::from_secs(600);

fn vm_hwm_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

fn percentiles(mut us: Vec<f64>) -> (f64, f64) {
    us.sort_by(|a, b| a.total_cmp(b));
    let at = |p: f64| us[((us.len() as f64 * p) as usize).min(us.len() - 1)];
    (at(0.50), at(0.99))
}

/// Names lists the size of the kit SD.Next's (114 samplers, 31 upscalers, 80 ControlNets).
fn names() -> Names {
    let mut samplers: Vec<String> = (0..113).map(|i| format!("Sampler {i}")).collect();
    samplers.push("Euler a".into());
    let mut upscalers: Vec<String> = (0..30).map(|i| format!("Upscaler {i}")).collect();
    upscalers.push("None".into());
    let mut controlnets: Vec<String> = (0..79).map(|i| format!("Net {i}")).collect();
    controlnets.push("tiny-controlnet".into());
    let checkpoints = vec![
        "Diffusers/tiny-sd15".to_string(),
        "Diffusers/tiny-sd15-b".into(),
    ];
    let known = checkpoints.clone();
    Names {
        checkpoint_known: Some(Arc::new(move |c: &str| known.iter().any(|k| k == c))),
        checkpoints,
        samplers: Some(samplers),
        vaes: Some(Vec::new()),
        upscalers: Some(upscalers),
        controlnets: Some(controlnets),
    }
}

/// A valid value of every txt2img field of the committed table.
fn every_field() -> Map<String, Value> {
    use contract::schema::Ty;
    fn value(ty: &Ty) -> Value {
        match ty {
            Ty::Int(_) => json!(1),
            Ty::Number(_) => json!(0.5),
            Ty::Str => json!("x"),
            Ty::Bool => json!(true),
            Ty::Object => json!({}),
            Ty::List(_) => json!([]),
            Ty::Union(ts) => ts
                .iter()
                .find(|t| **t != Ty::Null)
                .map(value)
                .unwrap_or(Value::Null),
            Ty::Model(_) | Ty::Null | Ty::Never | Ty::Any | Ty::Enum(_) => Value::Null,
        }
    }
    let s = contract::committed();
    let mut m = Map::new();
    for f in s.root(TaskType::Txt2img).expect("txt2img").fields() {
        m.insert(f.name.clone(), value(&f.ty));
    }
    for (k, v) in [
        ("sampler_name", "Euler a"),
        ("hr_sampler_name", "Same as primary"),
        ("hr_upscaler", "None"),
        ("resize_name", "None"),
        ("resize_name_before", "None"),
        ("resize_name_after", "None"),
        ("resize_name_mask", "None"),
        ("sampler_index", "Euler a"),
    ] {
        m.insert(k.into(), json!(v));
    }
    m
}

fn typical() -> Map<String, Value> {
    json!({"prompt": "a red fox in the snow, detailed, 35mm", "negative_prompt": "blurry",
           "steps": 20, "cfg_scale": 6.5, "width": 512, "height": 768, "seed": -1,
           "sampler_name": "Euler a", "batch_size": 1, "n_iter": 2, "clip_skip": 1,
           "enable_hr": false, "hr_scale": 2, "hr_upscaler": "None", "denoising_strength": 0.3,
           "styles": ["s1", "s2"], "tiling": false, "override_settings": {"k": 1},
           "script_args": [], "alwayson_scripts": {}})
    .as_object()
    .cloned()
    .expect("object")
}

fn control() -> Map<String, Value> {
    let unit = json!({"unit_type": "controlnet", "process": "Canny", "model": "tiny-controlnet",
                      "strength": 0.8, "start": 0, "end": 1, "image": "iVBORw0KGgo="});
    json!({"prompt": "a control fox", "steps": 20, "width_before": 512, "height_before": 512,
           "batch_count": 1, "batch_size": 1, "seed": 1, "sampler_name": "Euler a",
           "control": [unit.clone(), unit],
           "ip_adapter": [{"adapter": "Base", "images": ["iVBORw0KGgo="], "scale": 0.5}]})
    .as_object()
    .cloned()
    .expect("object")
}

fn time_check(
    name: &str,
    c: &Contract,
    kind: TaskType,
    req: &Map<String, Value>,
    ck: Option<&str>,
) {
    const N: usize = 20_000;
    c.check(kind, req, ck, None).expect("the request passes");
    let mut us = Vec::with_capacity(N);
    for _ in 0..N {
        let t = Instant::now();
        let r = c.check(kind, std::hint::black_box(req), ck, None);
        us.push(t.elapsed().as_secs_f64() * 1e6);
        assert!(r.is_ok());
    }
    let (p50, p99) = percentiles(us);
    println!(
        "1. check {name} ({} fields): p50 {p50:.1} µs, p99 {p99:.1} µs",
        req.len()
    );
}

async fn check() {
    let c = Contract {
        schemas: vec![contract::committed()],
        names: names(),
    };
    time_check(
        "typical txt2img",
        &c,
        TaskType::Txt2img,
        &typical(),
        Some("Diffusers/tiny-sd15"),
    );
    time_check(
        "txt2img, every field",
        &c,
        TaskType::Txt2img,
        &every_field(),
        Some("Diffusers/tiny-sd15"),
    );
    time_check(
        "control, 2 units + IP adapter",
        &c,
        TaskType::Control,
        &control(),
        None,
    );

    // The enqueue round trip over HTTP (paused host: nothing runs), the check included.
    let dir = tempfile::tempdir().expect("tempdir");
    let fake = FakeProcess::spawn(FakeArgs::fast_a()).await;
    let host = HostProcess::spawn(dir.path(), &[fake.url()], &["--start-paused"]).await;
    let api = &host.client;
    wait_until("the host read the lists", LONG, || async {
        api.backends()
            .await
            .ok()
            .filter(|b| b.iter().all(|b| b.contract.is_some()))
    })
    .await;
    let mut body = typical();
    body.insert("checkpoint".into(), json!("a"));
    let req: EnqueueRequest = serde_json::from_value(Value::Object(body)).expect("body");
    for _ in 0..200 {
        api.enqueue(TaskType::Txt2img, &req).await.expect("warm up");
    }
    let mut us = Vec::new();
    for _ in 0..2000 {
        let t = Instant::now();
        api.enqueue(TaskType::Txt2img, &req).await.expect("enqueue");
        us.push(t.elapsed().as_secs_f64() * 1e6);
    }
    let (p50, p99) = percentiles(us);
    println!(
        "1. enqueue round trip (typical txt2img, HTTP, paused host, check included): p50 {:.2} ms, p99 {:.2} ms",
        p50 / 1000.0,
        p99 / 1000.0
    );
}

/// `{"content": "<items joined by commas, in brackets>"}` of about `target` bytes.
fn import_body(item: &str, count: usize) -> Vec<u8> {
    let escaped = serde_json::to_string(item).expect("json");
    let escaped = &escaped[1..escaped.len() - 1];
    let mut b = Vec::with_capacity(16 + count * (escaped.len() + 1));
    b.extend_from_slice(b"{\"content\": \"[");
    for i in 0..count {
        if i > 0 {
            b.push(b',');
        }
        b.extend_from_slice(escaped.as_bytes());
    }
    b.extend_from_slice(b"]\"}");
    b
}

async fn import_case(name: &str, body: Vec<u8>, cap: Option<u32>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let fake = FakeProcess::spawn(FakeArgs::fast_a()).await;
    let host = HostProcess::spawn(dir.path(), &[fake.url()], &["--start-paused"]).await;
    let api: &Client = &host.client;
    if let Some(n) = cap {
        api.update_settings(&SettingsPatch {
            import_max_items: Some(n),
            ..SettingsPatch::default()
        })
        .await
        .expect("settings");
    }
    let pid = host.server.pid().expect("host pid");
    let before = vm_hwm_kib(pid);
    let size = body.len();
    let t = Instant::now();
    let r = api
        .raw(Method::Post, routes::IMPORT)
        .body(body, "application/json")
        .send()
        .await
        .expect("the import answers");
    let took = t.elapsed();
    let after = vm_hwm_kib(pid);
    let answer: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
    let what = match r.status {
        200 => format!(
            "200, {} imported, {} rejected ({} listed)",
            answer["imported"].as_array().map_or(0, Vec::len),
            answer["rejected_count"],
            answer["rejected"].as_array().map_or(0, Vec::len)
        ),
        s => format!("{s} {}", answer["message"]),
    };
    println!(
        "2. import {name}: {:.1} MB body → {what} in {:.1} s; host peak RSS (VmHWM) {:.0} MB before, {:.0} MB after",
        size as f64 / 1e6,
        took.as_secs_f64(),
        before as f64 / 1024.0,
        after as f64 / 1024.0
    );
}

async fn import() {
    // 30 million tiny items: `0,` is 2 bytes.
    let tiny = || import_body("0", 30_000_000);
    import_case("of 30 million tiny items, default cap", tiny(), None).await;
    import_case(
        "of 30 million tiny items, cap 1,000,000",
        tiny(),
        Some(1_000_000),
    )
    .await;
    let bad = r#"{"type":"txt2img","params":{"steps":"many"}}"#;
    import_case(
        "of 1 million items the contract rejects, cap 1,000,000",
        import_body(bad, 1_000_000),
        Some(1_000_000),
    )
    .await;
    let prompt = "a red fox in the snow ".repeat(25);
    let good = json!({"type": "txt2img", "params": {"prompt": prompt, "steps": 2}}).to_string();
    import_case(
        "of 100,000 valid tasks (550-character prompts), cap 1,000,000",
        import_body(&good, 100_000),
        Some(1_000_000),
    )
    .await;
}

fn main() {
    let only = std::env::var("BENCH").unwrap_or_default();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        if only.is_empty() || only.contains("check") {
            check().await;
        }
        if only.is_empty() || only.contains("import") {
            import().await;
        }
    });
}
