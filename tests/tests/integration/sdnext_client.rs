//! The host's typed SD.Next client (`agent_scheduler::sdnext`) against the fake.

use std::time::Duration;

use agent_scheduler::results::image::{image_ext, read_png_parameters};
use agent_scheduler::sdnext::{RemoteError, SdClient, resolve_checkpoint};
use fake_sdnext::{CountOrBool, FakeConfig, FakeConfigPatch, FakeSdNext, image_dimensions};
use scheduler_api::TaskType;
use scheduler_tests::fake_args::FakeArgs;
use scheduler_tests::harness::wait_until;
use serde_json::{Map, Value, json};

fn opts(v: Value) -> Map<String, Value> {
    v.as_object().cloned().expect("object")
}

#[tokio::test]
async fn models_samplers_and_checkpoint_switching() {
    let fake = FakeSdNext::start(FakeConfig {
        checkpoints: vec!["anime/a".into(), "b [abcdef1234]".into()],
        loaded: Some("anime/a".into()),
        ..FakeConfig::with_checkpoints(&[])
    })
    .await
    .unwrap();
    let c = SdClient::new(&fake.url()).unwrap();
    assert_eq!(c.version().await.unwrap()["app"], json!("sd.next"));

    let models = c.sd_models().await.unwrap();
    let titles: Vec<&str> = models.iter().map(|m| m.title.as_str()).collect();
    assert_eq!(titles, vec!["anime/a", "b [abcdef1234]"]);
    assert_eq!(models[1].hash.as_deref(), Some("abcdef1234"));
    assert_eq!(resolve_checkpoint(&models, "a").unwrap().title, "anime/a");
    assert_eq!(
        resolve_checkpoint(&models, "b").unwrap().title,
        "b [abcdef1234]"
    );
    assert!(resolve_checkpoint(&models, "c").is_none());

    let samplers = c.samplers().await.unwrap();
    for s in ["Euler a", "UniPC", "DPM++ 2M"] {
        assert!(samplers.iter().any(|n| n == s), "{s} listed");
    }
    assert!(
        !samplers.iter().any(|n| n == "Default"),
        "Default is valid but not listed"
    );

    let loaded = c
        .loaded_checkpoint()
        .await
        .unwrap()
        .expect("a model is loaded");
    assert_eq!(loaded.title, "anime/a");
    assert!(loaded.filename.unwrap().ends_with("anime/a.safetensors"));

    c.set_options(&opts(json!({"sd_model_checkpoint": "b [abcdef1234]"})))
        .await
        .unwrap();
    assert_eq!(
        c.loaded_checkpoint().await.unwrap().unwrap().title,
        "b [abcdef1234]"
    );
    assert_eq!(fake.stats().loads, vec!["b [abcdef1234]".to_string()]);

    // The quirk: an unknown name unloads the model and still "succeeds".
    c.set_options(&opts(json!({"sd_model_checkpoint": "nope"})))
        .await
        .unwrap();
    assert_eq!(c.loaded_checkpoint().await.unwrap(), None);
    let out = c
        .generate(TaskType::Txt2img, &json!({"prompt": "x", "steps": 1}))
        .await
        .unwrap();
    assert!(out.images.is_empty(), "no model: 200 with no images");
    assert!(out.infotexts.is_empty());
    assert_eq!(out.info, Value::Null);
    assert_eq!(fake.stats().unloads, 1);
}

#[tokio::test]
async fn generate_follows_only_the_global_samples_format() {
    let fake = FakeSdNext::start(FakeConfig::with_checkpoints(&["a", "b"]))
        .await
        .unwrap();
    let c = SdClient::new(&format!("{}/", fake.url())).unwrap();
    let body = json!({"prompt": "a cat", "negative_prompt": "dog", "steps": 3, "width": 512,
                      "height": 256, "seed": 10, "n_iter": 2, "batch_size": 3,
                      "samples_format": "png", "override_settings": {"samples_format": "png"},
                      "unknown_field": {"ignored": true}});
    let out = c.generate(TaskType::Txt2img, &body).await.unwrap();
    assert_eq!(out.images.len(), 6, "n_iter * batch_size images");
    assert_eq!(out.infotexts.len(), 6);
    assert!(
        out.images.iter().all(|i| image_ext(i) == "jpg"),
        "jpg until the option changes"
    );
    assert_eq!(
        image_dimensions(&out.images[0]),
        Some((64, 32)),
        "capped, aspect kept"
    );
    assert_eq!(out.info["all_seeds"], json!([10, 11, 12, 13, 14, 15]));
    let t = &out.infotexts[2];
    assert!(t.starts_with("a cat\nNegative prompt: dog\n"), "{t}");
    assert!(t.contains("Steps: 3, Size: 512x256"), "{t}");
    assert!(t.contains("Seed: 12,"), "{t}");
    assert!(t.contains("Model: a"), "{t}");

    c.set_options(&opts(json!({"samples_format": "png"})))
        .await
        .unwrap();
    let out = c
        .generate(
            TaskType::Txt2img,
            &json!({"prompt": "png please", "steps": 1, "width": 64, "height": 64,
                    "samples_format": "jpg"}),
        )
        .await
        .unwrap();
    assert_eq!(out.images.len(), 1);
    assert_eq!(
        image_ext(&out.images[0]),
        "png",
        "the request's samples_format is ignored"
    );
    assert_eq!(
        read_png_parameters(&out.images[0]).as_deref(),
        Some(out.infotexts[0].as_str()),
        "PNG carries the infotext in its parameters chunk"
    );
    let seed = out.info["all_seeds"][0].as_i64().unwrap();
    assert!(seed >= 0, "seed -1 becomes a random seed");

    let i2i = c
        .generate(
            TaskType::Img2img,
            &json!({"prompt": "i2i", "steps": 1, "width": 64, "height": 64,
                    "init_images": [format!("data:image/png;base64,{}",
                        base64_of(&out.images[0]))]}),
        )
        .await
        .unwrap();
    assert_eq!(i2i.images.len(), 1);
    assert!(i2i.infotexts[0].contains("Denoising strength: 0.5"));
    let stats = fake.stats();
    assert_eq!(stats.prompts, vec!["a cat", "png please", "i2i"]);
    assert_eq!(stats.samples_format.as_deref(), Some("png"));
}

fn base64_of(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(b)
}

#[tokio::test]
async fn progress_interrupt_and_placeholder() {
    let fake = FakeSdNext::start(FakeConfig {
        step_ms: 5,
        ..FakeConfig::with_checkpoints(&["a"])
    })
    .await
    .unwrap();
    let c = SdClient::new(&fake.url()).unwrap();
    let idle = c.progress(true).await.unwrap();
    assert_eq!((idle.job.as_str(), idle.progress), ("", 0.0));

    let c2 = c.clone();
    let job = tokio::spawn(async move {
        c2.generate(
            TaskType::Txt2img,
            &json!({"prompt": "long", "steps": 5000, "width": 256, "height": 128}),
        )
        .await
    });
    let p = wait_until("sampling to start", Duration::from_secs(10), || async {
        c.progress(false)
            .await
            .ok()
            .filter(|p| p.job == "Inference" && p.sampling_step >= 1)
    })
    .await;
    assert_eq!(p.sampling_steps, 5000);
    assert_eq!(p.job_count, 1);
    assert!(p.current_image.is_some(), "preview unless skipped");
    assert!(p.eta_relative.unwrap() > 0.0);
    assert!(c.progress(true).await.unwrap().current_image.is_none());

    c.interrupt().await.unwrap();
    let out = tokio::time::timeout(Duration::from_secs(10), job)
        .await
        .expect("the job stops at its next step")
        .unwrap()
        .unwrap();
    assert_eq!(out.images.len(), 1, "one placeholder image");
    assert_eq!(
        image_dimensions(&out.images[0]),
        Some((32, 16)),
        "latent-sized"
    );
    assert_eq!(out.infotexts.len(), 2, "two infotexts for one image");
    let after = c.progress(true).await.unwrap();
    assert!(after.interrupted);
    assert_eq!(after.job, "");
    let g = &fake.stats().generations[0];
    assert!(g.interrupted);
}

#[tokio::test]
async fn errors_are_typed() {
    let fake = FakeSdNext::start(FakeConfig::with_checkpoints(&["a"]))
        .await
        .unwrap();
    let c = SdClient::new(&fake.url()).unwrap();
    let e = c
        .generate(
            TaskType::Txt2img,
            &json!({"prompt": "x", "sampler_name": "Nope"}),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&e, RemoteError::Http { status: 404, message } if message == "Sampler not found"),
        "{e:?}"
    );
    assert!(!e.is_outage());
    let e = c
        .generate(TaskType::Txt2img, &json!({"steps": "many"}))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, RemoteError::Http { status: 422, message } if message.contains("steps")),
        "{e:?}"
    );
    let e = c
        .generate(TaskType::Img2img, &json!({"prompt": "x"}))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, RemoteError::Http { status: 400, message } if message == "Init image is none"),
        "{e:?}"
    );

    fake.configure(&FakeConfigPatch {
        rate_limit_next: Some(CountOrBool::Bool(true)),
        rate_limit_retry_after: Some(7),
        ..FakeConfigPatch::default()
    });
    let e = c
        .generate(TaskType::Txt2img, &json!({"prompt": "x", "steps": 1}))
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            RemoteError::RateLimited {
                retry_after_s: Some(7)
            }
        ),
        "{e:?}"
    );
    assert!(e.is_retryable() && !e.is_outage());
    let ok = c
        .generate(TaskType::Txt2img, &json!({"prompt": "x", "steps": 1}))
        .await
        .unwrap();
    assert_eq!(ok.images.len(), 1, "only the next request was limited");

    fake.configure(&FakeConfigPatch {
        fail_next_with_empty: Some(CountOrBool::Count(1)),
        ..FakeConfigPatch::default()
    });
    let empty = c
        .generate(TaskType::Txt2img, &json!({"prompt": "x", "steps": 1}))
        .await
        .unwrap();
    assert!(empty.images.is_empty());

    // A closed port is an outage.
    let (_held, addr) = scheduler_tests::harness::refusing_address();
    let down = SdClient::new(&format!("http://{addr}")).unwrap();
    let e = down.version().await.unwrap_err();
    assert!(matches!(e, RemoteError::Unreachable(_)), "{e:?}");
    assert!(e.is_outage());
}

#[tokio::test]
async fn credentials_in_the_url_become_basic_auth() {
    let fake = FakeSdNext::start(FakeConfig {
        auth: Some(("test".into(), "s3cr@t".into())),
        ..FakeConfig::with_checkpoints(&["a"])
    })
    .await
    .unwrap();
    let addr = fake.addr();
    let good = SdClient::new(&format!("http://test:s3cr%40t@{addr}/")).unwrap();
    assert_eq!(good.display_url(), format!("http://{addr}"));
    assert_eq!(good.origin(), format!("http://{addr}"));
    assert_eq!(good.version().await.unwrap()["app"], json!("sd.next"));

    let e = SdClient::new(&format!("http://test:wrong@{addr}"))
        .unwrap()
        .version()
        .await
        .unwrap_err();
    assert!(
        matches!(&e, RemoteError::Http { status: 401, message } if message == "Unauthorized"),
        "{e:?}"
    );
    let e = SdClient::new(&fake.url())
        .unwrap()
        .progress(true)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, RemoteError::Http { status: 401, message } if message == "Not authenticated"),
        "{e:?}"
    );

    let bare = SdClient::new("localhost:7860/sub/").unwrap();
    assert_eq!(bare.display_url(), "http://localhost:7860/sub");
    assert_eq!(bare.origin(), "http://localhost:7860");
    assert_eq!(
        SdClient::new("https://example.test").unwrap().origin(),
        "https://example.test:443"
    );
    assert!(SdClient::new("ftp://x").is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_backend_mid_generation_is_an_outage() {
    let fake =
        scheduler_tests::inprocess::fake_with_args(FakeArgs::new().step_ms(5).checkpoint("a"))
            .await;
    let c = SdClient::new(&fake.url()).unwrap();
    let c2 = c.clone();
    let job = tokio::spawn(async move {
        c2.generate(
            TaskType::Txt2img,
            &json!({"prompt": "doomed", "steps": 100000}),
        )
        .await
    });
    wait_until("the job to run", Duration::from_secs(10), || async {
        c.progress(true).await.ok().filter(|p| p.job == "Inference")
    })
    .await;
    // The backend dies: its port refuses connections, the open ones are cut.
    fake.go_down();
    let e = tokio::time::timeout(Duration::from_secs(10), job)
        .await
        .expect("generate returns when the backend dies")
        .unwrap()
        .unwrap_err();
    assert!(matches!(e, RemoteError::Dropped(_)), "{e:?}");
    assert!(e.is_outage(), "{e:?}");
    let e = c.version().await.unwrap_err();
    assert!(matches!(e, RemoteError::Unreachable(_)), "{e:?}");
    assert!(e.is_outage());

    // Back on the same port: the client reconnects.
    fake.come_back();
    assert_eq!(c.version().await.unwrap()["app"], json!("sd.next"));
    let out = c
        .generate(TaskType::Txt2img, &json!({"prompt": "again", "steps": 1}))
        .await
        .unwrap();
    assert_eq!(out.images.len(), 1);
    assert_eq!(fake.stats().prompts, vec!["doomed", "again"]);
}

#[tokio::test]
async fn back_to_back_generations_reuse_the_connection() {
    let fake = FakeSdNext::start(FakeConfig {
        step_ms: 0,
        ..FakeConfig::with_checkpoints(&["a"])
    })
    .await
    .unwrap();
    let c = SdClient::new(&fake.url()).unwrap();
    for i in 0..30 {
        c.generate(
            TaskType::Txt2img,
            &json!({"prompt": format!("p{i}"), "steps": 1,
                                              "width": 8, "height": 8}),
        )
        .await
        .unwrap();
    }
    let stats = fake.stats();
    let mut gaps = stats.idle_gaps_us();
    assert_eq!(gaps.len(), 29);
    gaps.sort_unstable();
    let median = gaps[gaps.len() / 2];
    eprintln!(
        "client back-to-back idle gap: median {median} µs, max {}",
        gaps[28]
    );
    assert!(median < 50_000, "median idle gap {median} µs");
}

#[tokio::test]
async fn vae_list() {
    let fake = FakeSdNext::start(FakeConfig {
        vaes: vec!["sdxl-vae".into(), "kl-f8".into()],
        ..FakeConfig::with_checkpoints(&["a"])
    })
    .await
    .unwrap();
    let c = SdClient::new(&fake.url()).unwrap();
    assert_eq!(c.sd_vaes().await.unwrap(), vec!["sdxl-vae", "kl-f8"]);
    c.set_options(&opts(json!({"sd_vae": "kl-f8"})))
        .await
        .unwrap();
    let o = c.options().await.unwrap();
    assert_eq!(o["sd_vae"], json!("kl-f8"));
    assert_eq!(
        fake.stats().options_posts,
        vec![opts(json!({"sd_vae": "kl-f8"}))]
    );
}
