//! The fake's recorded quirks, exercised over plain HTTP (what the host must cope with).

use std::time::Duration;

use fake_sdnext::{FakeConfig, FakeHandle, FakeSdNext, FakeStats};
use scheduler_tests::fake_args::FakeArgs;
use scheduler_tests::harness::{FakeProcess, wait_until};
use serde_json::{Value, json};

struct Http {
    base: String,
    c: reqwest::Client,
}

impl Http {
    fn new(fake: &FakeHandle) -> Http {
        Http {
            base: fake.url(),
            c: reqwest::Client::new(),
        }
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let r = self
            .c
            .post(format!("{}{path}", self.base))
            .json(&body)
            .send()
            .await
            .unwrap();
        let s = r.status().as_u16();
        (s, r.json().await.unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str) -> Value {
        self.c
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    async fn txt2img(&self, body: Value) -> (u16, Value) {
        self.post("/sdapi/v1/txt2img", body).await
    }
}

fn n_images(v: &Value) -> usize {
    v["images"].as_array().map(Vec::len).unwrap_or(0)
}

#[tokio::test]
async fn generations_are_serialised() {
    let fake = FakeSdNext::start(FakeConfig {
        step_ms: 3,
        ..FakeConfig::with_checkpoints(&["a"])
    })
    .await
    .unwrap();
    let h = std::sync::Arc::new(Http::new(&fake));
    let mut jobs = Vec::new();
    for i in 0..3 {
        let h = h.clone();
        jobs.push(tokio::spawn(async move {
            h.txt2img(json!({"prompt": format!("p{i}"), "steps": 10}))
                .await
        }));
    }
    for j in jobs {
        let (s, v) = j.await.unwrap();
        assert_eq!((s, n_images(&v)), (200, 1));
    }
    let st: FakeStats = fake.stats();
    assert_eq!(st.max_concurrent_jobs, 1);
    assert_eq!(st.prompts.len(), 3);
    let mut g = st.generations.clone();
    g.sort_by_key(|g| g.started_us);
    for w in g.windows(2) {
        assert!(
            w[1].started_us >= w[0].responded_us,
            "job {} started before job {} finished",
            w[1].prompt,
            w[0].prompt
        );
    }
    // Each job sampled for at least steps × step_ms.
    assert!(g.iter().all(|x| x.responded_us - x.started_us >= 30_000));
}

#[tokio::test]
async fn checkpoint_quirks() {
    let fake = FakeSdNext::start(FakeConfig::with_checkpoints(&["a", "folder/b"]))
        .await
        .unwrap();
    let h = Http::new(&fake);
    // override_settings: runs on b, then loads a back (the double load).
    let (s, v) = h
        .txt2img(json!({"prompt": "o", "steps": 1,
                        "override_settings": {"sd_model_checkpoint": "folder/b"}}))
        .await;
    assert_eq!((s, n_images(&v)), (200, 1));
    let st = fake.stats();
    assert_eq!(st.loads, vec!["folder/b", "a"]);
    assert_eq!(st.generations[0].checkpoint.as_deref(), Some("folder/b"));
    assert_eq!(h.get("/sdapi/v1/checkpoint").await["title"], json!("a"));
    // Only exact aliases work in override_settings.
    h.txt2img(json!({"prompt": "o2", "steps": 1,
                     "override_settings": {"sd_model_checkpoint": "b.safetensors [x]"}}))
        .await;
    assert_eq!(fake.stats().loads.len(), 2, "inexact override ignored");

    // Top-level field: permanent switch.
    h.txt2img(json!({"prompt": "t", "steps": 1, "sd_model_checkpoint": "folder/b"}))
        .await;
    assert_eq!(
        h.get("/sdapi/v1/checkpoint").await["title"],
        json!("folder/b")
    );
    assert_eq!(
        h.get("/sdapi/v1/options").await["sd_model_checkpoint"],
        json!("folder/b")
    );
    // Unknown top-level checkpoint: 200 with nothing.
    let (s, v) = h
        .txt2img(json!({"prompt": "u", "steps": 1, "sd_model_checkpoint": "zzz"}))
        .await;
    assert_eq!((s, n_images(&v), v["info"].clone()), (200, 0, json!("")));

    // /checkpoint POST: ok true, then ok false when already loaded.
    let (_, v) = h
        .post("/sdapi/v1/checkpoint?sd_model_checkpoint=a", json!(null))
        .await;
    assert_eq!(v, json!({"ok": true}));
    let (_, v) = h
        .post("/sdapi/v1/checkpoint?sd_model_checkpoint=a", json!(null))
        .await;
    assert_eq!(v, json!({"ok": false}));

    // /options with an unknown name unloads and says updated: true.
    let (_, v) = h
        .post(
            "/sdapi/v1/options",
            json!({"sd_model_checkpoint": "missing"}),
        )
        .await;
    assert_eq!(v, json!({"updated": [{"sd_model_checkpoint": true}]}));
    assert_eq!(
        h.get("/sdapi/v1/checkpoint").await,
        json!({"type": null, "class": null})
    );
    assert_eq!(
        h.get("/sdapi/v1/options").await["sd_model_checkpoint"],
        json!("missing"),
        "the option keeps the bad name"
    );
    let (s, v) = h.txt2img(json!({"prompt": "none", "steps": 1})).await;
    assert_eq!((s, n_images(&v)), (200, 0));
    let log = h.get("/sdapi/v1/log?lines=5").await;
    assert!(log.to_string().contains("model not loaded"), "{log}");
    // Not listed until set.
    assert!(
        h.get("/sdapi/v1/options")
            .await
            .get("samples_format")
            .is_none()
    );
}

#[tokio::test]
async fn request_validation_like_sdnext() {
    let fake = FakeSdNext::start(FakeConfig::with_checkpoints(&["a"]))
        .await
        .unwrap();
    let h = Http::new(&fake);
    for ok in ["euler A", "Default", "DPM++ 2M", "unipc"] {
        let (s, _) = h
            .txt2img(json!({"prompt": "x", "steps": 1, "sampler_name": ok}))
            .await;
        assert_eq!(s, 200, "sampler {ok}");
    }
    for bad in [json!(null), json!(""), json!("Euler b")] {
        let (s, v) = h
            .txt2img(json!({"prompt": "x", "steps": 1, "sampler_name": bad}))
            .await;
        assert_eq!((s, v["detail"].clone()), (404, json!("Sampler not found")));
    }
    let (s, v) = h.txt2img(json!({"steps": "5", "width": 64.0})).await;
    assert_eq!(s, 200, "lax integer coercion: {v}");
    let (s, v) = h.txt2img(json!({"steps": 2.5})).await;
    assert_eq!(s, 422, "{v}");
    let r = reqwest::Client::new()
        .post(format!("{}/sdapi/v1/txt2img", fake.url()))
        .header("content-type", "application/json")
        .body("{\"prompt\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 422);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["detail"][0]["type"], json!("json_invalid"));
    let (s, _) = h
        .txt2img(json!({"prompt": "x", "steps": 1, "alwayson_scripts": {"FreeU": {"args": []}}}))
        .await;
    assert_eq!(s, 200);
    let (s, v) = h
        .post("/sdapi/v1/img2img", json!({"init_images": []}))
        .await;
    assert_eq!((s, v), (400, json!({"error": "Init image is none"})));
    let r = reqwest::Client::new()
        .delete(format!("{}/sdapi/v1/txt2img", fake.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 405);
    let (_, v) = h
        .txt2img(json!({"prompt": "echo", "steps": 1, "not_a_field": 1, "cfg_scale": 7}))
        .await;
    assert!(
        v["parameters"].get("not_a_field").is_none(),
        "unknown keys are ignored"
    );
    assert_eq!(v["parameters"]["cfg_scale"], json!(7));
}

#[tokio::test]
async fn a_lost_interrupt_needs_a_resend() {
    let fake = FakeSdNext::start(FakeConfig {
        step_ms: 5,
        lose_first_interrupt: true,
        ..FakeConfig::with_checkpoints(&["a"])
    })
    .await
    .unwrap();
    let h = std::sync::Arc::new(Http::new(&fake));
    let h2 = h.clone();
    let job = tokio::spawn(async move {
        h2.txt2img(json!({"prompt": "stubborn", "steps": 100000, "width": 64, "height": 64}))
            .await
    });
    let step = |v: &Value| v["state"]["sampling_step"].as_i64().unwrap_or(0);
    let at = wait_until("sampling", Duration::from_secs(10), || async {
        let p = h.get("/sdapi/v1/progress?skip_current_image=true").await;
        (p["state"]["job"] == json!("Inference") && step(&p) >= 1).then(|| step(&p))
    })
    .await;
    let (s, _) = h.post("/sdapi/v1/interrupt", json!(null)).await;
    assert_eq!(s, 204);
    // The job keeps going: the interrupt was lost.
    wait_until(
        "the job to keep sampling",
        Duration::from_secs(10),
        || async {
            let p = h.get("/sdapi/v1/progress?skip_current_image=true").await;
            (step(&p) > at + 3).then_some(())
        },
    )
    .await;
    assert!(!job.is_finished());
    h.post("/sdapi/v1/interrupt", json!(null)).await;
    let (s, v) = tokio::time::timeout(Duration::from_secs(10), job)
        .await
        .expect("the re-sent interrupt stops the job")
        .unwrap();
    assert_eq!((s, n_images(&v)), (200, 1));
    let st = fake.stats();
    assert_eq!((st.interrupts, st.interrupts_lost), (2, 1));
    assert!(st.generations[0].interrupted);
}

#[tokio::test]
async fn binary_cli_hooks_and_restart_on_the_same_port() {
    if !scheduler_tests::harness::binaries_available() {
        return;
    }
    let mut fake = FakeProcess::spawn(
        FakeArgs::new()
            .step_ms(1)
            .checkpoints(&["x", "anime/y"])
            .loaded("anime/y")
            .load_ms(1),
    )
    .await;
    let c = reqwest::Client::new();
    let url = fake.url();
    let v: Value = c
        .get(format!("{url}/sdapi/v1/checkpoint"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["title"], json!("anime/y"));
    let models: Value = c
        .get(format!("{url}/sdapi/v1/sd-models"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(models.as_array().unwrap().len(), 2);
    fake.configure(&fake_sdnext::FakeConfigPatch {
        fail_next_with_empty: Some(fake_sdnext::CountOrBool::Bool(true)),
        ..Default::default()
    })
    .await;
    let r: Value = c
        .post(format!("{url}/sdapi/v1/txt2img"))
        .json(&json!({"prompt": "first", "steps": 1}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(n_images(&r), 0, "fail_next_with_empty");
    let st = fake.stats().await;
    assert_eq!(st.count_requests("POST", "/sdapi/v1/txt2img"), 1);
    assert!(st.generations[0].empty);
    assert!(st.requests.iter().all(|r| !r.path.starts_with("/fake/")));

    let addr = fake.server.addr();
    fake.sigkill().await;
    assert!(
        c.get(format!("{url}/sdapi/v1/version"))
            .send()
            .await
            .is_err()
    );
    fake.restart().await;
    assert_eq!(fake.server.addr(), addr, "same port after restart");
    assert!(fake.stats().await.requests.is_empty(), "fresh state");
    let r = c
        .get(format!("{url}/sdapi/v1/version"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);

    // With --auth, every /sdapi route needs credentials; hooks do not.
    let auth = FakeProcess::spawn(FakeArgs::new().auth("u", "p").no_model()).await;
    let r = c
        .get(format!("{}/sdapi/v1/version", auth.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert!(r.headers().get("www-authenticate").is_none());
    let v: Value = c
        .get(format!("{}/sdapi/v1/checkpoint", auth.url()))
        .basic_auth("u", Some("p"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v, json!({"type": null, "class": null}), "--no-model");
    assert_eq!(auth.stats().await.count_requests("GET", "/sdapi/v1/"), 2);
}

#[tokio::test]
async fn a_job_runs_on_when_its_client_goes_away() {
    let fake = FakeSdNext::start(FakeConfig {
        step_ms: 2,
        ..FakeConfig::with_checkpoints(&["a"])
    })
    .await
    .unwrap();
    let h = std::sync::Arc::new(Http::new(&fake));
    let h2 = h.clone();
    let job =
        tokio::spawn(async move { h2.txt2img(json!({"prompt": "orphan", "steps": 40})).await });
    wait_until("the job to run", Duration::from_secs(10), || async {
        let p = h.get("/sdapi/v1/progress?skip_current_image=true").await;
        (p["state"]["job"] == json!("Inference")).then_some(())
    })
    .await;
    job.abort(); // the client disconnects
    let _ = job.await;
    wait_until(
        "the orphaned job to finish",
        Duration::from_secs(10),
        || async {
            let st = fake.stats();
            st.generations.first().map(|g| g.images)
        },
    )
    .await;
    let p = h.get("/sdapi/v1/progress?skip_current_image=true").await;
    assert_eq!(p["state"]["job"], json!(""), "idle again afterwards");
    assert_eq!(fake.stats().generations[0].images, 1);
}

/// The in-process outage: while down the port refuses connections and open ones are cut
/// (the port stays bound, so no automatically chosen port is ever it); back up, the same
/// address answers again, on kept and fresh connections.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_keeps_the_port_refuses_connections_and_ends() {
    let fake = FakeSdNext::start(FakeConfig::with_checkpoints(&["a"]))
        .await
        .expect("start fake");
    let http = Http::new(&fake);
    // A connection opened before the outage (kept alive by the client's pool).
    assert_eq!(http.get("/sdapi/v1/version").await["app"], "sd.next");
    fake.go_down();
    assert!(!fake.is_up());
    let e = http
        .c
        .get(format!("{}/sdapi/v1/version", http.base))
        .send()
        .await
        .expect_err("down");
    let fresh = reqwest::Client::new()
        .get(format!("{}/sdapi/v1/version", http.base))
        .send()
        .await
        .expect_err("down");
    assert!(fresh.is_connect(), "refused: {fresh:?}");
    assert!(e.is_connect() || e.is_request(), "{e:?}");
    fake.come_back();
    assert!(fake.is_up());
    assert_eq!(http.get("/sdapi/v1/version").await["app"], "sd.next");
    let fresh = reqwest::Client::new()
        .get(format!("{}/sdapi/v1/version", http.base))
        .send()
        .await
        .expect("back up");
    assert_eq!(fresh.status().as_u16(), 200);
}

#[tokio::test]
async fn a_held_answer_and_a_held_load_wait_for_the_test() {
    use fake_sdnext::{CountOrBool, FakeConfigPatch, Fault, FaultRule};
    let fake = FakeSdNext::start(FakeConfig::with_checkpoints(&["a", "b"]))
        .await
        .unwrap();
    fake.configure(&FakeConfigPatch {
        faults: Some(vec![FaultRule {
            fault: Fault::Hold,
            prompt: Some("held".into()),
            count: Some(1),
        }]),
        hold_loads: Some(CountOrBool::Count(1)),
        ..FakeConfigPatch::default()
    });
    let h = std::sync::Arc::new(Http::new(&fake));
    let held = {
        let h = h.clone();
        tokio::spawn(async move { h.txt2img(json!({"prompt": "held", "steps": 4})).await })
    };
    wait_until("the answer to be held", Duration::from_secs(10), || async {
        (fake.held() == ["held"]).then_some(())
    })
    .await;
    // Held at its last step: SD.Next shows the job running.
    let p = h.get("/sdapi/v1/progress").await;
    assert_eq!(
        (
            p["state"]["sampling_step"].clone(),
            p["state"]["job_count"].clone()
        ),
        (json!(4), json!(1))
    );
    // An interrupt meanwhile is seen when it goes: the interrupted job's answer.
    assert_eq!(h.post("/sdapi/v1/interrupt", json!({})).await.0, 204);
    assert!(!held.is_finished(), "still held");
    fake.release("held");
    let (s, v) = held.await.unwrap();
    assert_eq!((s, n_images(&v)), (200, 1));
    assert!(fake.stats().generations[0].interrupted);
    // The next one (the rule was for one request) is not held.
    assert_eq!(
        h.txt2img(json!({"prompt": "held", "steps": 1})).await.0,
        200
    );

    // A held checkpoint load keeps SD.Next's lock (a generation waits behind it) and goes
    // on after the client left.
    let load = {
        let h = h.clone();
        tokio::spawn(async move {
            h.post("/sdapi/v1/options", json!({"sd_model_checkpoint": "b"}))
                .await
        })
    };
    wait_until("the load to be held", Duration::from_secs(10), || async {
        (fake.held() == ["load b"]).then_some(())
    })
    .await;
    load.abort();
    let behind = {
        let h = h.clone();
        tokio::spawn(async move { h.txt2img(json!({"prompt": "behind", "steps": 1})).await })
    };
    wait_until(
        "the generation to wait behind the load",
        Duration::from_secs(10),
        || async { (fake.stats().count_requests("POST", "/sdapi/v1/txt2img") == 3).then_some(()) },
    )
    .await;
    let st = fake.stats();
    assert_eq!(
        (st.loaded.as_deref(), st.prompts.len()),
        (Some("a"), 2),
        "nothing loaded or sampled while the load is held"
    );
    // Over HTTP, as the binary's tests do.
    assert_eq!(
        h.post("/fake/config", json!({"release_held": "*"})).await.0,
        200
    );
    let (s, v) = behind.await.unwrap();
    assert_eq!((s, n_images(&v)), (200, 1));
    let st = fake.stats();
    assert_eq!(
        (st.loaded.as_deref(), st.held.len()),
        (Some("b"), 0),
        "the abandoned load went on once released"
    );
}
