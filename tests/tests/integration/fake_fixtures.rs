//! The fake SD.Next answers like the recorded real one: for every fixture in INDEX.tsv that
//! the fake can reproduce, the same status, the same content type, the same JSON keys
//! (recursively) and the same value types. Image bytes and values are not compared.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use fake_sdnext::{FakeConfig, FakeHandle, FakeSdNext};
use scheduler_tests::fixtures::sdnext_api_fixtures;
use scheduler_tests::harness::wait_until;
use serde_json::{Value, json};

/// Fixtures the fake does not serve (documented in the report; everything else must match).
const NOT_REPRODUCED: &[&str] = &[
    "openapi.json",
    "cmd-flags.json",
    "prompt-styles.first5.json",
    "options-info.json",
];

/// Objects whose key sets are open (the fake may list fewer keys, each with the right type).
const OPEN_OBJECTS: &[&str] = &[
    // the request echo lists ~238 fields on a real server
    ".parameters",
    // scheduler options differ per sampler
    "[].options",
    ".options",
];

#[derive(Debug, Clone)]
struct Row {
    file: String,
    status: u16,
    content_type: String,
}

fn read_index(dir: &Path) -> Vec<Row> {
    let text = std::fs::read_to_string(dir.join("INDEX.tsv")).expect("INDEX.tsv");
    let mut rows = Vec::new();
    for line in text.lines().skip(1) {
        let cols: Vec<&str> = line.split('\t').collect();
        if cols.len() < 4 {
            continue;
        }
        let file = cols[0].to_string();
        // One row has the status line in the status column and no content type; fall back to
        // the recorded headers file for both.
        let headers = std::fs::read_to_string(dir.join("headers").join(format!("{file}.headers")))
            .unwrap_or_default();
        let status = cols[3]
            .trim()
            .parse::<u16>()
            .ok()
            .or_else(|| {
                cols[3]
                    .split_whitespace()
                    .find_map(|w| w.parse::<u16>().ok())
            })
            .expect("status");
        let header_ct = headers.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case("content-type")
                .then(|| v.trim().to_string())
        });
        let content_type = cols
            .get(4)
            .map(|c| c.trim().to_string())
            .filter(|c| !c.is_empty())
            .or(header_ct)
            .unwrap_or_default();
        rows.push(Row {
            file,
            status,
            content_type,
        });
    }
    rows
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Compares shapes: same keys (recursively) and the same value types.
fn compare(fake: &Value, real: &Value, path: &str, errors: &mut Vec<String>) {
    match (fake, real) {
        (Value::Object(f), Value::Object(r)) => {
            let open = OPEN_OBJECTS.iter().any(|o| path.ends_with(o));
            let fk: BTreeSet<&String> = f.keys().collect();
            let rk: BTreeSet<&String> = r.keys().collect();
            let extra: Vec<_> = fk.difference(&rk).collect();
            if !extra.is_empty() {
                errors.push(format!("{path}: keys not in the recording: {extra:?}"));
            }
            if !open {
                let missing: Vec<_> = rk.difference(&fk).collect();
                if !missing.is_empty() {
                    errors.push(format!("{path}: missing keys {missing:?}"));
                }
            }
            for k in fk.intersection(&rk) {
                compare(&f[*k], &r[*k], &format!("{path}.{k}"), errors);
            }
        }
        (Value::Array(f), Value::Array(r)) => {
            if r.is_empty() {
                return;
            }
            if f.is_empty() {
                errors.push(format!("{path}: empty, the recording has elements"));
                return;
            }
            // Each element must match the shape of at least one recorded element.
            for (i, fe) in f.iter().enumerate() {
                let mut best: Option<Vec<String>> = None;
                for re in r {
                    let mut e = Vec::new();
                    compare(fe, re, &format!("{path}[]"), &mut e);
                    if e.is_empty() {
                        best = None;
                        break;
                    }
                    if best.as_ref().is_none_or(|b| e.len() < b.len()) {
                        best = Some(e);
                    }
                }
                if let Some(e) = best {
                    errors.push(format!("{path}[{i}] matches no recorded element: {e:?}"));
                }
            }
        }
        (f, r) => {
            if type_name(f) != type_name(r) {
                errors.push(format!(
                    "{path}: type {} (fake {f}) but recorded {} ({})",
                    type_name(f),
                    type_name(r),
                    truncate(r)
                ));
            }
        }
    }
}

fn truncate(v: &Value) -> String {
    let s = v.to_string();
    s.chars().take(80).collect()
}

/// What the fake answered.
#[derive(Debug, Clone)]
struct Got {
    status: u16,
    content_type: String,
    body: Vec<u8>,
}

async fn call(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    body: Option<Value>,
) -> Got {
    let mut rb = http.request(method, url);
    if let Some(b) = body {
        rb = rb.json(&b);
    }
    let r = rb.send().await.expect("request to the fake");
    let status = r.status().as_u16();
    let content_type = r
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let body = r.bytes().await.expect("body").to_vec();
    Got {
        status,
        content_type,
        body,
    }
}

fn tiny_png_b64() -> String {
    let img = image::RgbImage::from_pixel(64, 64, image::Rgb([10, 20, 30]));
    let mut c = std::io::Cursor::new(Vec::new());
    img.write_to(&mut c, image::ImageFormat::Png).unwrap();
    B64.encode(c.into_inner())
}

struct Run {
    http: reqwest::Client,
    got: BTreeMap<String, Got>,
}

impl Run {
    async fn record(
        &mut self,
        file: &str,
        fake: &FakeHandle,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Got {
        let g = call(&self.http, method, format!("{}{}", fake.url(), path), body).await;
        self.got.insert(file.to_string(), g.clone());
        g
    }
}

fn progress_job(body: &[u8]) -> Option<(String, i64)> {
    let v: Value = serde_json::from_slice(body).ok()?;
    Some((
        v["state"]["job"].as_str()?.to_string(),
        v["state"]["sampling_step"].as_i64()?,
    ))
}

/// Drives the fake through the same sequence the fixtures were recorded with.
async fn reproduce() -> BTreeMap<String, Got> {
    use reqwest::Method as M;
    let cfg = FakeConfig {
        step_ms: 5,
        load_ms: 5,
        checkpoints: vec!["Diffusers/tiny-sd15".into(), "Diffusers/tiny-sd15-b".into()],
        loaded: Some("Diffusers/tiny-sd15".into()),
        ..FakeConfig::default()
    };
    let fake = FakeSdNext::start(cfg).await.expect("start fake");
    let mut run = Run {
        http: reqwest::Client::new(),
        got: BTreeMap::new(),
    };
    let v1 = "/sdapi/v1";

    // The recording was made with samples_format=png in config.json: set it first, then the
    // second POST is the recorded "unchanged" answer.
    run.record(
        "-",
        &fake,
        M::POST,
        &format!("{v1}/options"),
        Some(json!({"samples_format": "png"})),
    )
    .await;
    run.record(
        "options-post.json",
        &fake,
        M::POST,
        &format!("{v1}/options"),
        Some(json!({"samples_format": "png"})),
    )
    .await;
    for (file, path) in [
        ("version.json", "version"),
        ("sd-models.json", "sd-models"),
        ("samplers.json", "samplers"),
        ("sampler.json", "sampler"),
        ("options.json", "options"),
        ("checkpoint.json", "checkpoint"),
        ("status-idle.json", "status"),
        ("progress-idle.json", "progress"),
        ("scripts.json", "scripts"),
        ("memory.json", "memory"),
    ] {
        run.record(file, &fake, M::GET, &format!("{v1}/{path}"), None)
            .await;
    }
    let t2i = format!("{v1}/txt2img");
    run.record(
        "txt2img-64x64-2steps.json",
        &fake,
        M::POST,
        &t2i,
        Some(json!({"prompt": "a test", "steps": 2, "width": 64, "height": 64, "seed": 1})),
    )
    .await;
    run.record(
        "txt2img-batch-2x2.json",
        &fake,
        M::POST,
        &t2i,
        Some(
            json!({"prompt": "a test", "steps": 2, "width": 64, "height": 64, "seed": 1,
                    "n_iter": 2, "batch_size": 2}),
        ),
    )
    .await;
    run.record(
        "txt2img-unknown-sampler-404.json",
        &fake,
        M::POST,
        &t2i,
        Some(json!({"prompt": "x", "steps": 2, "sampler_name": "nope"})),
    )
    .await;
    run.record(
        "txt2img-bad-type-422.json",
        &fake,
        M::POST,
        &t2i,
        Some(json!({"prompt": "x", "steps": "many"})),
    )
    .await;
    run.record(
        "txt2img-unknown-alwayson-422.json",
        &fake,
        M::POST,
        &t2i,
        Some(json!({"prompt": "x", "steps": 2, "alwayson_scripts": {"nope": {"args": []}}})),
    )
    .await;
    let i2i = format!("{v1}/img2img");
    run.record(
        "img2img-no-init-400.json",
        &fake,
        M::POST,
        &i2i,
        Some(json!({"prompt": "x", "steps": 2})),
    )
    .await;
    run.record(
        "img2img-64x64.json",
        &fake,
        M::POST,
        &i2i,
        Some(
            json!({"prompt": "img2img test", "steps": 4, "width": 64, "height": 64, "seed": 5,
                    "denoising_strength": 0.5,
                    "init_images": [format!("data:image/png;base64,{}", tiny_png_b64())]}),
        ),
    )
    .await;

    // A long job: progress mid-job, then interrupt it.
    let http = run.http.clone();
    let url = format!("{}{t2i}", fake.url());
    let job = tokio::spawn(async move {
        call(
            &http,
            M::POST,
            url,
            Some(
                json!({"prompt": "interrupt me", "steps": 4000, "width": 256, "height": 256,
                        "seed": 3}),
            ),
        )
        .await
    });
    let progress_url = format!("{}{v1}/progress", fake.url());
    let http = run.http.clone();
    wait_until(
        "the long job to be sampling",
        Duration::from_secs(10),
        || {
            let http = http.clone();
            let url = progress_url.clone();
            async move {
                let g = call(&http, M::GET, url, None).await;
                progress_job(&g.body).filter(|(job, step)| job == "Inference" && *step >= 2)
            }
        },
    )
    .await;
    run.record(
        "progress-midjob.json",
        &fake,
        M::GET,
        &format!("{v1}/progress"),
        None,
    )
    .await;
    run.record(
        "progress-midjob-skip-image.json",
        &fake,
        M::GET,
        &format!("{v1}/progress?skip_current_image=true"),
        None,
    )
    .await;
    run.record(
        "status-midjob.json",
        &fake,
        M::GET,
        &format!("{v1}/status"),
        None,
    )
    .await;
    run.record(
        "interrupt.empty",
        &fake,
        M::POST,
        &format!("{v1}/interrupt"),
        None,
    )
    .await;
    let interrupted = tokio::time::timeout(Duration::from_secs(10), job)
        .await
        .expect("the interrupted job returns")
        .expect("join");
    run.got
        .insert("txt2img-interrupted.json".into(), interrupted);
    run.record(
        "progress-after-interrupt.json",
        &fake,
        M::GET,
        &format!("{v1}/progress"),
        None,
    )
    .await;

    let cp = format!("{v1}/checkpoint?sd_model_checkpoint=Diffusers/tiny-sd15-b");
    run.record("checkpoint-post.json", &fake, M::POST, &cp, None)
        .await;
    run.record("checkpoint-post-same.json", &fake, M::POST, &cp, None)
        .await;
    run.record(
        "options-post-checkpoint.json",
        &fake,
        M::POST,
        &format!("{v1}/options"),
        Some(json!({"sd_model_checkpoint": "Diffusers/tiny-sd15"})),
    )
    .await;
    run.record(
        "checkpoint-after-switch.json",
        &fake,
        M::GET,
        &format!("{v1}/checkpoint"),
        None,
    )
    .await;
    run.record(
        "refresh-checkpoints.empty",
        &fake,
        M::POST,
        &format!("{v1}/refresh-checkpoints"),
        None,
    )
    .await;
    run.record(
        "not-found-404.json",
        &fake,
        M::GET,
        &format!("{v1}/nope"),
        None,
    )
    .await;
    run.record(
        "progress-after-jobs.json",
        &fake,
        M::GET,
        &format!("{v1}/progress"),
        None,
    )
    .await;
    run.record(
        "status-after-jobs.json",
        &fake,
        M::GET,
        &format!("{v1}/status"),
        None,
    )
    .await;
    run.record(
        "history.json",
        &fake,
        M::GET,
        &format!("{v1}/history"),
        None,
    )
    .await;
    run.record(
        "log-tail.json",
        &fake,
        M::GET,
        &format!("{v1}/log?lines=200"),
        None,
    )
    .await;
    run.record(
        "control-500-xyz-bug.json",
        &fake,
        M::POST,
        &format!("{v1}/control"),
        Some(json!({"prompt": "x"})),
    )
    .await;
    run.record(
        "status-stuck-after-control-500.json",
        &fake,
        M::GET,
        &format!("{v1}/status"),
        None,
    )
    .await;
    run.record(
        "progress-stuck-after-control-500.json",
        &fake,
        M::GET,
        &format!("{v1}/progress"),
        None,
    )
    .await;

    // A second server with --auth test:secret.
    let auth = FakeSdNext::start(FakeConfig {
        auth: Some(("test".into(), "secret".into())),
        ..FakeConfig::default()
    })
    .await
    .expect("start auth fake");
    run.record(
        "auth-401-no-credentials.json",
        &auth,
        M::GET,
        &format!("{v1}/progress"),
        None,
    )
    .await;
    let wrong = {
        let r = run
            .http
            .get(format!("{}{v1}/progress", auth.url()))
            .basic_auth("test", Some("wrong"))
            .send()
            .await
            .expect("request");
        assert!(
            r.headers().get("www-authenticate").is_none(),
            "SD.Next sends no WWW-Authenticate header"
        );
        Got {
            status: r.status().as_u16(),
            content_type: r
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string(),
            body: r.bytes().await.unwrap().to_vec(),
        }
    };
    run.got
        .insert("auth-401-wrong-credentials.json".into(), wrong);
    run.record(
        "auth-version-no-credentials.json",
        &auth,
        M::GET,
        &format!("{v1}/version"),
        None,
    )
    .await;
    run.got
}

#[tokio::test]
async fn fake_answers_have_the_recorded_shapes() {
    let Some(dir) = sdnext_api_fixtures() else {
        return;
    };
    let rows = read_index(&dir);
    assert!(rows.len() >= 40, "INDEX.tsv has {} rows", rows.len());
    let got = reproduce().await;
    let mut failures = Vec::new();
    let mut compared = 0;
    let mut skipped = Vec::new();
    for row in &rows {
        if NOT_REPRODUCED.contains(&row.file.as_str()) {
            skipped.push(row.file.clone());
            continue;
        }
        let Some(g) = got.get(&row.file) else {
            failures.push(format!("{}: not reproduced by the test", row.file));
            continue;
        };
        compared += 1;
        if g.status != row.status {
            failures.push(format!(
                "{}: status {} != recorded {}",
                row.file, g.status, row.status
            ));
        }
        if g.content_type != row.content_type {
            failures.push(format!(
                "{}: content type {:?} != recorded {:?}",
                row.file, g.content_type, row.content_type
            ));
        }
        let recorded = std::fs::read(dir.join(&row.file)).expect("fixture file");
        if recorded.is_empty() {
            if !g.body.is_empty() {
                failures.push(format!("{}: body should be empty", row.file));
            }
            continue;
        }
        let real: Value = serde_json::from_slice(&recorded).expect("fixture JSON");
        let fake: Value = match serde_json::from_slice(&g.body) {
            Ok(v) => v,
            Err(e) => {
                failures.push(format!("{}: fake body is not JSON: {e}", row.file));
                continue;
            }
        };
        let mut errors = Vec::new();
        compare(&fake, &real, "", &mut errors);
        // `info` is a JSON string inside the JSON: compare its shape too.
        if let (Some(Value::String(fi)), Some(Value::String(ri))) =
            (fake.get("info"), real.get("info"))
            && !ri.is_empty()
        {
            match (
                serde_json::from_str::<Value>(fi),
                serde_json::from_str::<Value>(ri),
            ) {
                (Ok(f), Ok(r)) => compare(&f, &r, ".info(json)", &mut errors),
                _ => errors.push(".info: not a JSON string".into()),
            }
        }
        for e in errors {
            failures.push(format!("{}: {e}", row.file));
        }
    }
    eprintln!("compared {compared} fixtures; not reproduced: {skipped:?}");
    assert!(compared >= 38, "only {compared} fixtures compared");
    assert!(
        failures.is_empty(),
        "{} differences:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[tokio::test]
async fn recorded_values_that_matter() {
    // Values (not just shapes) the host relies on, checked against the same fixtures.
    let Some(dir) = sdnext_api_fixtures() else {
        return;
    };
    let got = reproduce().await;
    let body = |f: &str| -> Value { serde_json::from_slice(&got[f].body).unwrap() };
    let real = |f: &str| -> Value {
        serde_json::from_slice(&std::fs::read(dir.join(f)).unwrap()).unwrap()
    };
    for f in [
        "txt2img-unknown-sampler-404.json",
        "img2img-no-init-400.json",
        "not-found-404.json",
        "options-post.json",
        "checkpoint-post.json",
        "checkpoint-post-same.json",
        "options-post-checkpoint.json",
        "auth-401-no-credentials.json",
        "auth-401-wrong-credentials.json",
        "control-500-xyz-bug.json",
        "txt2img-unknown-alwayson-422.json",
    ] {
        assert_eq!(body(f), real(f), "{f}: the whole body is as recorded");
    }
    let batch = body("txt2img-batch-2x2.json");
    assert_eq!(batch["images"].as_array().unwrap().len(), 4);
    let info: Value = serde_json::from_str(batch["info"].as_str().unwrap()).unwrap();
    assert_eq!(info["all_seeds"], json!([1, 2, 3, 4]));
    let interrupted = body("txt2img-interrupted.json");
    assert_eq!(interrupted["images"].as_array().unwrap().len(), 1);
    let info: Value = serde_json::from_str(interrupted["info"].as_str().unwrap()).unwrap();
    assert_eq!(info["infotexts"].as_array().unwrap().len(), 2);
    assert_eq!(
        body("progress-after-interrupt.json")["state"]["interrupted"],
        json!(true)
    );
    assert_eq!(
        body("progress-stuck-after-control-500.json")["state"]["job"],
        json!("API-CTL")
    );
    assert_eq!(
        body("status-stuck-after-control-500.json")["status"],
        json!("running")
    );
    assert_eq!(
        body("progress-midjob-skip-image.json")["current_image"],
        Value::Null
    );
    assert!(body("progress-midjob.json")["current_image"].is_string());
    assert_eq!(
        body("checkpoint-after-switch.json")["title"],
        json!("Diffusers/tiny-sd15")
    );
}
