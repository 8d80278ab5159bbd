use super::*;
use serde_json::json;

fn snap(pairs: &[(&str, Value)]) -> Snapshot {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

fn s(x: &str) -> Value {
    Value::String(x.into())
}

fn txt2img_defaults() -> Snapshot {
    snap(&[
        ("txt2img_prompt", s("a cat")),
        ("txt2img_neg_prompt", s("blurry")),
        ("txt2img_styles", json!([])),
        ("txt2img_steps", s("20")),
        ("txt2img_sampling", s("Default")),
        ("txt2img_cfg_scale", s("-1")),
        ("txt2img_cfg_end", s("1")),
        ("txt2img_image_cfg_rescale", s("-1")),
        ("txt2img_width", s("1024")),
        ("txt2img_height", s("1024")),
        ("txt2img_seed", s("-1")),
        ("txt2img_subseed", s("-1")),
        ("txt2img_subseed_strength", s("0")),
        ("txt2img_batch_count", s("1")),
        ("txt2img_batch_size", s("1")),
        ("txt2img_enable_hr", json!(false)),
        ("txt2img_denoising_strength", s("0.3")),
        (CHECKPOINT_ID, s("Diffusers/tiny-sd15")),
    ])
}

#[test]
fn cfg_minus_one_and_rescale_minus_one_are_sent_as_is() {
    let (ty, req) = build_request(
        Tab::Txt2img,
        &txt2img_defaults(),
        &CaptureOptions::default(),
    )
    .unwrap();
    assert_eq!(ty, TaskType::Txt2img);
    assert_eq!(req.params["cfg_scale"], json!(-1.0));
    assert_eq!(req.params["cfg_rescale"], json!(-1.0));
    assert_eq!(req.params["cfg_end"], json!(1.0));
}

#[test]
fn batch_count_is_n_iter_and_ints_are_ints() {
    let mut sn = txt2img_defaults();
    sn.insert("txt2img_batch_count".into(), s("3"));
    sn.insert("txt2img_batch_size".into(), s("2"));
    sn.insert("txt2img_seed".into(), s("12345"));
    let (_, req) = build_request(Tab::Txt2img, &sn, &CaptureOptions::default()).unwrap();
    assert_eq!(req.params["n_iter"], json!(3));
    assert_eq!(req.params["batch_size"], json!(2));
    assert_eq!(req.params["seed"], json!(12345));
    assert_eq!(req.params["steps"], json!(20));
    assert!(!req.params.contains_key("batch_count"));
}

#[test]
fn sampler_as_shown_and_styles_as_tokens() {
    let mut sn = txt2img_defaults();
    sn.insert("txt2img_styles".into(), json!(["Photo", " Cinematic "]));
    let (_, req) = build_request(Tab::Txt2img, &sn, &CaptureOptions::default()).unwrap();
    assert_eq!(req.params["sampler_name"], json!("Default"));
    assert_eq!(req.params["styles"], json!(["Photo", "Cinematic"]));
    // A separator row is never sent as a sampler.
    assert_eq!(
        convert(Kind::Choice, &s("── Samplers ──")),
        Some(s("Default"))
    );
}

#[test]
fn checkpoint_choices() {
    let sn = txt2img_defaults();
    let cap = |c: CheckpointChoice| {
        build_request(
            Tab::Txt2img,
            &sn,
            &CaptureOptions {
                checkpoint: c,
                name: None,
            },
        )
        .unwrap()
        .1
        .checkpoint
    };
    assert_eq!(
        cap(CheckpointChoice::Current).as_deref(),
        Some("Diffusers/tiny-sd15")
    );
    assert_eq!(cap(CheckpointChoice::Runtime), None);
    assert_eq!(cap(CheckpointChoice::All).as_deref(), Some("*"));
    assert_eq!(
        cap(CheckpointChoice::Title("b".into())).as_deref(),
        Some("b")
    );
    assert_eq!(
        cap(CheckpointChoice::Folder("anime/".into())).as_deref(),
        Some("anime/*")
    );
    for c in [
        CheckpointChoice::Current,
        CheckpointChoice::Runtime,
        CheckpointChoice::All,
        CheckpointChoice::Title("x/y".into()),
        CheckpointChoice::Folder("x".into()),
    ] {
        assert_eq!(CheckpointChoice::from_value(&c.to_value()), c);
    }
}

#[test]
fn dropdown_lists_current_runtime_titles_and_folders_with_counts() {
    let titles: Vec<String> = ["a", "anime/x", "anime/y", "anime2/z", "anime\\deep\\w"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let opts = checkpoint_options(&titles);
    let labels: Vec<&str> = opts.iter().map(|(_, l)| l.as_str()).collect();
    assert_eq!(labels[0], "Current checkpoint");
    assert_eq!(labels[1], "Runtime checkpoint");
    assert!(labels.contains(&"anime (3)"), "{labels:?}");
    assert!(labels.contains(&"anime2 (1)"));
    assert!(labels.contains(&"anime/deep (1)"));
}

#[test]
fn img2img_needs_an_image_and_keeps_zero_size() {
    let mut sn = snap(&[
        ("img2img_prompt", s("p")),
        ("img2img_width", s("0")),
        ("img2img_height", s("0")),
        ("img2img_denoising_strength", s("0.3")),
        ("img2img_scale", s("1")),
    ]);
    assert_eq!(
        build_request(Tab::Img2img, &sn, &CaptureOptions::default()).unwrap_err(),
        CaptureError::NoInitImage
    );
    sn.insert("img2img_image".into(), s("data:image/png;base64,AAAA"));
    sn.insert(MASK_ID.into(), s("data:image/png;base64,BBBB"));
    let (ty, req) = build_request(Tab::Img2img, &sn, &CaptureOptions::default()).unwrap();
    assert_eq!(ty, TaskType::Img2img);
    assert_eq!(req.params["width"], json!(0));
    assert_eq!(req.params["height"], json!(0));
    assert_eq!(req.params["denoising_strength"], json!(0.3));
    assert_eq!(
        req.params["init_images"],
        json!(["data:image/png;base64,AAAA"])
    );
    assert_eq!(req.params["mask"], json!("data:image/png;base64,BBBB"));
    // The stored snapshot does not carry the image twice.
    let ps = req.page_snapshot.unwrap();
    assert!(ps["img2img_image"].as_str().unwrap().starts_with("<image"));
}

#[test]
fn control_tab_maps_to_txt2img_or_img2img() {
    let mut sn = snap(&[
        ("control_prompt", s("c")),
        ("control_before_resize_width", s("768")),
        ("control_batch_count", s("2")),
        ("control_input_denoising_strength", s("0.5")),
    ]);
    let (ty, req) = build_request(Tab::Control, &sn, &CaptureOptions::default()).unwrap();
    assert_eq!(ty, TaskType::Txt2img);
    assert_eq!(req.params["width"], json!(768));
    assert_eq!(req.params["n_iter"], json!(2));
    assert!(!req.params.contains_key("init_images"));
    sn.insert("control_input".into(), s("data:image/png;base64,CC"));
    let (ty, req) = build_request(Tab::Control, &sn, &CaptureOptions::default()).unwrap();
    assert_eq!(ty, TaskType::Img2img);
    assert_eq!(
        req.params["init_images"],
        json!(["data:image/png;base64,CC"])
    );
}

#[test]
fn hires_refiner_and_resize_mode() {
    let mut sn = txt2img_defaults();
    sn.insert("txt2img_enable_hr".into(), json!(true));
    sn.insert("txt2img_resize_mode".into(), s("Fixed"));
    sn.insert("txt2img_steps_alt".into(), s("10"));
    sn.insert("txt2img_refiner_prompt".into(), s("r"));
    let (_, req) = build_request(Tab::Txt2img, &sn, &CaptureOptions::default()).unwrap();
    assert_eq!(req.params["enable_hr"], json!(true));
    assert_eq!(req.params["hr_resize_mode"], json!(1));
    assert_eq!(req.params["hr_second_pass_steps"], json!(10));
    assert_eq!(req.params["refiner_prompt"], json!("r"));
}

#[test]
fn empty_numbers_are_left_out_and_name_is_kept() {
    let mut sn = txt2img_defaults();
    sn.insert("txt2img_steps".into(), s(""));
    let (_, req) = build_request(
        Tab::Txt2img,
        &sn,
        &CaptureOptions {
            checkpoint: CheckpointChoice::Current,
            name: Some("night".into()),
        },
    )
    .unwrap();
    assert!(!req.params.contains_key("steps"));
    assert_eq!(req.name.as_deref(), Some("night"));
    let body = serde_json::to_value(&req).unwrap();
    assert_eq!(
        body["prompt"],
        json!("a cat"),
        "params are flattened: {body}"
    );
    assert_eq!(body["checkpoint"], json!("Diffusers/tiny-sd15"));
}

#[test]
fn fill_plan_reverses_the_table() {
    let (_, req) = build_request(
        Tab::Txt2img,
        &txt2img_defaults(),
        &CaptureOptions::default(),
    )
    .unwrap();
    let mut params = req.params.clone();
    params.insert("checkpoint".into(), json!("Diffusers/tiny-sd15"));
    let plan = fill_plan(Tab::Img2img, &params);
    let get = |id: &str| {
        plan.iter()
            .find(|(i, _, _)| *i == id)
            .map(|(_, _, v)| v.clone())
    };
    assert_eq!(get("img2img_prompt"), Some(s("a cat")));
    assert_eq!(get("img2img_batch_count"), Some(s("1")));
    assert_eq!(get("img2img_cfg_scale"), Some(s("-1.0")));
    assert_eq!(get(CHECKPOINT_ID), Some(s("Diffusers/tiny-sd15")));
    // Round trip: reading the filled values back gives the same request.
    let sn: Snapshot = plan
        .into_iter()
        .map(|(i, _, v)| (i.to_owned(), v))
        .collect();
    let mut sn2 = sn.clone();
    sn2.insert("img2img_image".into(), s("data:image/png;base64,AA"));
    let (_, back) = build_request(Tab::Img2img, &sn2, &CaptureOptions::default()).unwrap();
    for k in [
        "prompt",
        "steps",
        "cfg_scale",
        "seed",
        "n_iter",
        "sampler_name",
        "styles",
    ] {
        assert_eq!(back.params[k], req.params[k], "{k}");
    }
}

#[test]
fn every_tab_reads_a_prompt_and_the_checkpoint() {
    for tab in Tab::ALL {
        let ids = ids_for(tab);
        assert!(ids.iter().any(|(i, _)| i.ends_with("_prompt")));
        assert!(ids.iter().any(|(i, _)| *i == CHECKPOINT_ID));
        assert_eq!(Tab::parse(tab.prefix()), Some(tab));
    }
}

/// Every id of the table exists in the recorded Modern and Standard pages.
#[test]
fn mapped_ids_exist_in_recorded_pages() {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures/sdnext/ui");
    for theme in ["modern-dom.html", "standard-dom.html"] {
        let path = dir.join(theme);
        let Ok(html) = std::fs::read_to_string(&path) else {
            eprintln!("skipped: recorded page {} absent", path.display());
            return;
        };
        let mut missing = Vec::new();
        for tab in Tab::ALL {
            for (id, _) in ids_for(tab) {
                if !html.contains(&format!("id=\"{id}\"")) {
                    missing.push(id);
                }
            }
        }
        for id in [
            "txt2img_generate",
            "img2img_generate",
            "control_generate",
            "tabs",
        ] {
            if !html.contains(&format!("id=\"{id}\"")) {
                missing.push(id);
            }
        }
        assert!(missing.is_empty(), "{theme}: ids not found: {missing:?}");
        assert!(html.contains("<title>SD.Next"), "{theme}: title");
    }
}
