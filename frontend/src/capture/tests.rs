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
    let cap = |c: DropdownChoice| {
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
        cap(DropdownChoice::Current).as_deref(),
        Some("Diffusers/tiny-sd15")
    );
    assert_eq!(cap(DropdownChoice::Runtime), None);
    assert_eq!(cap(DropdownChoice::All).as_deref(), Some("*"));
    assert_eq!(cap(DropdownChoice::Title("b".into())).as_deref(), Some("b"));
    assert_eq!(
        cap(DropdownChoice::Folder("anime/".into())).as_deref(),
        Some("anime/*")
    );
    for c in [
        DropdownChoice::Current,
        DropdownChoice::Runtime,
        DropdownChoice::All,
        DropdownChoice::Title("x/y".into()),
        DropdownChoice::Folder("x".into()),
    ] {
        assert_eq!(DropdownChoice::from_value(&c.to_value()), c);
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
        (IMG2IMG_MODE, json!(0)),
    ]);
    assert_eq!(
        build_request(Tab::Img2img, &sn, &CaptureOptions::default()).unwrap_err(),
        CaptureError::NoInitImage
    );
    sn.insert(
        IMG2IMG_INPUT.into(),
        json!({"image": "data:image/png;base64,AAAA"}),
    );
    let (ty, req) = build_request(Tab::Img2img, &sn, &CaptureOptions::default()).unwrap();
    assert_eq!(ty, TaskType::Img2img);
    assert_eq!(req.params["width"], json!(0));
    assert_eq!(req.params["height"], json!(0));
    assert_eq!(req.params["denoising_strength"], json!(0.3));
    assert_eq!(
        req.params["init_images"],
        json!(["data:image/png;base64,AAAA"])
    );
    assert!(!req.params.contains_key("mask"));
    // The stored snapshot does not carry the image twice.
    let ps = req.page_snapshot.unwrap();
    assert!(
        ps[IMG2IMG_INPUT]["image"]
            .as_str()
            .unwrap()
            .starts_with("<image")
    );
}

#[test]
fn img2img_masks_by_mode_with_the_inpaint_settings() {
    // Inpaint: the mask drawn on the image, with blur, area ("masked" = full res), padding
    // and mode ("invert" = 1).
    let sn = snap(&[
        ("img2img_prompt", s("p")),
        (IMG2IMG_MODE, json!(1)),
        (
            IMG2IMG_INPUT,
            json!({"image": "data:image/png;base64,IMG", "mask": "data:image/png;base64,MASK"}),
        ),
        ("img2img_mask_blur", s("8")),
        ("img2img_inpaint_full_res", json!(1)),
        ("img2img_inpaint_full_res_padding", s("48")),
        ("img2img_mask_mode", json!(1)),
    ]);
    let (_, req) = build_request(Tab::Img2img, &sn, &CaptureOptions::default()).unwrap();
    let p = &req.params;
    assert_eq!(p["init_images"], json!(["data:image/png;base64,IMG"]));
    assert_eq!(p["mask"], json!("data:image/png;base64,MASK"));
    assert_eq!(p["mask_blur"], json!(8));
    assert_eq!(p["inpaint_full_res"], json!(true));
    assert_eq!(p["inpaint_full_res_padding"], json!(48));
    assert_eq!(p["inpainting_mask_invert"], json!(1));
    // Upload: the uploaded image and mask, whatever the other modes hold.
    let mut up = sn.clone();
    up.insert(IMG2IMG_MODE.into(), json!(4));
    up.insert("img_inpaint_base".into(), s("data:image/png;base64,BASE"));
    up.insert(MASK_ID.into(), s("data:image/png;base64,UPMASK"));
    let (_, req) = build_request(Tab::Img2img, &up, &CaptureOptions::default()).unwrap();
    assert_eq!(
        req.params["init_images"],
        json!(["data:image/png;base64,BASE"])
    );
    assert_eq!(req.params["mask"], json!("data:image/png;base64,UPMASK"));
}

fn control_snapshot() -> Snapshot {
    use control::*;
    snap(&[
        ("control_prompt", s("edge city")),
        ("control_steps", s("2")),
        ("control_sampling", s("Euler a")),
        ("control_seed", s("7")),
        ("control_cfg_scale", s("-1")),
        ("control_guidance_scale", s("-1")),
        ("control_before_resize_width", s("64")),
        ("control_before_resize_height", s("64")),
        ("control_before_resize_mode", s("Fixed")),
        ("control_batch_count", s("2")),
        ("control_input_type", json!(0)),
        ("control_input_denoising_strength", s("0.5")),
        ("control_hdr_mode", s("Absolute values")),
        ("control_grading_shadows_tint", s("#A0B0C0")),
        (
            "control_sampling_alt",
            json!({"value": "Euler", "choices": ["Default", "Euler", "Same as primary"]}),
        ),
        (KANVAS, json!({"image": "data:image/png;base64,INPUT"})),
        (CONTROL_TYPE, json!(0)),
        (&unit_key(0, "enabled"), json!(true)),
        (&unit_key(0, "process_name"), s("Canny")),
        (&unit_key(0, "model_name"), s("tiny-controlnet")),
        (&unit_key(0, "mode"), s("default")),
        (&unit_key(0, "strength"), s("0.8")),
        (&unit_key(0, "start"), s("0.1")),
        (&unit_key(0, "end"), s("0.9")),
        (&unit_key(1, "enabled"), json!(true)),
        (&unit_key(1, "process_name"), s("None")),
        (&unit_key(1, "model_name"), s("tiny-controlnet")),
        (&unit_key(1, "strength"), s("1")),
        (&unit_key(1, "image"), s("data:image/png;base64,OWN")),
        (&unit_key(2, "enabled"), json!(false)),
        (&unit_key(2, "model_name"), s("tiny-controlnet")),
        (&extra_key("Guess mode"), json!(true)),
        (&proc_key("Canny", "Low threshold"), s("50")),
        (&proc_key("Canny", "High threshold"), s("150")),
        (CHECKPOINT_ID, s("Diffusers/tiny-sd15")),
    ])
}

#[test]
fn control_tab_becomes_a_control_task_with_its_units() {
    let (ty, req) = build_request(
        Tab::Control,
        &control_snapshot(),
        &CaptureOptions::default(),
    )
    .unwrap();
    assert_eq!(ty, TaskType::Control);
    let p = &req.params;
    assert_eq!(p["prompt"], json!("edge city"));
    assert_eq!(p["steps"], json!(2));
    assert_eq!(p["sampler_name"], json!("Euler a"));
    assert_eq!(p["width_before"], json!(64));
    assert_eq!(p["height_before"], json!(64));
    assert_eq!(p["resize_mode_before"], json!(1));
    assert_eq!(p["batch_count"], json!(2));
    assert_eq!(p["cfg_scale"], json!(-1.0));
    assert_eq!(p["guidance_scale"], json!(-1.0));
    assert_eq!(p["denoising_strength"], json!(0.5));
    assert_eq!(p["hdr_mode"], json!(1));
    assert_eq!(p["grading_shadows_tint"], json!("#a0b0c0"));
    assert_eq!(p["hr_sampler_index"], json!(1));
    assert_eq!(p["unit_type"], json!("controlnet"));
    assert!(!p.contains_key("n_iter") && !p.contains_key("width"));
    assert!(!p.contains_key("init_control"), "units take the input");
    assert_eq!(
        p["control"],
        json!([
            {"unit_type": "controlnet", "process": "Canny", "model": "tiny-controlnet",
             "mode": "default", "strength": 0.8, "start": 0.1, "end": 0.9, "guess": true,
             "process_params": {"low_threshold": 50, "high_threshold": 150},
             "image": "data:image/png;base64,INPUT"},
            {"unit_type": "controlnet", "process": "", "model": "tiny-controlnet",
             "strength": 1.0, "guess": true, "image": "data:image/png;base64,OWN"},
        ])
    );
    assert_eq!(req.checkpoint.as_deref(), Some("Diffusers/tiny-sd15"));
}

#[test]
fn control_input_alone_is_the_init_image_and_a_unit_without_any_image_is_refused() {
    let mut sn = control_snapshot();
    for k in 0..control::MAX_UNITS {
        sn.insert(control::unit_key(k, "enabled"), json!(false));
    }
    let (_, req) = build_request(Tab::Control, &sn, &CaptureOptions::default()).unwrap();
    assert_eq!(req.params["control"], json!([]));
    assert_eq!(
        req.params["init_control"],
        json!(["data:image/png;base64,INPUT"])
    );
    let mut sn = control_snapshot();
    sn.remove(control::KANVAS);
    assert_eq!(
        build_request(Tab::Control, &sn, &CaptureOptions::default()).unwrap_err(),
        CaptureError::UnitWithoutImage(0)
    );
    // A Kanvas mask goes as the request's mask; "1st: Same as control" also sends the input
    // as the init image.
    let mut sn = control_snapshot();
    sn.insert(
        control::KANVAS.into(),
        json!({"image": "data:image/png;base64,INPUT", "mask": "data:image/png;base64,M"}),
    );
    sn.insert("control_input_type".into(), json!(1));
    let (_, req) = build_request(Tab::Control, &sn, &CaptureOptions::default()).unwrap();
    assert_eq!(req.params["mask"], json!("data:image/png;base64,M"));
    assert_eq!(req.params["input_type"], json!(1));
    assert_eq!(
        req.params["init_control"],
        json!(["data:image/png;base64,INPUT"])
    );
}

#[test]
fn other_control_types_use_their_own_extras() {
    let mut sn = control_snapshot();
    sn.insert(control::CONTROL_TYPE.into(), json!(1));
    sn.insert(control::extra_key("Control factor"), s("0.6"));
    let (_, req) = build_request(Tab::Control, &sn, &CaptureOptions::default()).unwrap();
    assert_eq!(req.params["unit_type"], json!("t2i adapter"));
    let u = &req.params["control"][0];
    assert_eq!(u["unit_type"], json!("t2i adapter"));
    assert_eq!(u["factor"], json!(0.6));
    assert!(u.get("guess").is_none());
}

#[test]
fn ip_adapters_come_from_their_labelled_arguments() {
    let arg = |label: &str, value: Value| json!({"label": label, "value": value});
    let mut args = vec![
        arg("Active IP adapters", json!(2)),
        arg("Unload adapter", json!(false)),
    ];
    for a in ["Base SD15", "None", "None", "None"] {
        args.push(arg("Adapter", json!(a)));
    }
    for x in [0.7, 0.5, 0.5, 0.5] {
        args.push(arg("Strength", json!(x)));
    }
    args.push(arg("Input images", json!(["data:image/png;base64,FACE"])));
    for _ in 0..3 {
        args.push(arg("Input images", json!([])));
    }
    for b in [true, false, false, false] {
        args.push(arg("Crop to portrait", json!(b)));
    }
    for x in [0.2, 0.0, 0.0, 0.0] {
        args.push(arg("Start", json!(x)));
    }
    for x in [0.8, 1.0, 1.0, 1.0] {
        args.push(arg("End", json!(x)));
    }
    for _ in 0..4 {
        args.push(arg("Input masks", json!([])));
    }
    let mut sn = txt2img_defaults();
    sn.insert(control::IP.into(), json!({ "args": args }));
    let (_, req) = build_request(Tab::Txt2img, &sn, &CaptureOptions::default()).unwrap();
    assert_eq!(
        req.params["ip_adapter"],
        json!([{"adapter": "Base SD15", "scale": 0.7, "start": 0.2, "end": 0.8, "crop": true,
                "images": ["data:image/png;base64,FACE"]}])
    );
}

#[test]
fn scripts_keep_each_argument_with_its_label() {
    let mut sn = txt2img_defaults();
    sn.insert(
        control::SCRIPT.into(),
        json!({"title": "XYZ Grid", "args": [
            {"label": "X type", "value": "[Param] Steps"}, {"label": "X values", "value": "2,4"},
            {"label": "Draw legend", "value": true}]}),
    );
    let (_, req) = build_request(Tab::Txt2img, &sn, &CaptureOptions::default()).unwrap();
    assert_eq!(req.params["script_name"], json!("XYZ Grid"));
    assert_eq!(
        req.params["script_args"],
        json!(["[Param] Steps", "2,4", true])
    );
    assert_eq!(
        req.params[scheduler_api::field::SCRIPT_ARG_LABELS],
        json!(["X type", "X values", "Draw legend"])
    );
    // "Send to" gives them back by label.
    let extras = fill_extras(&req.params);
    assert_eq!(
        extras.script,
        Some((
            "XYZ Grid".to_owned(),
            vec![
                (Some("X type".to_owned()), json!("[Param] Steps")),
                (Some("X values".to_owned()), json!("2,4")),
                (Some("Draw legend".to_owned()), json!(true)),
            ]
        ))
    );
    // No script: nothing.
    sn.insert(control::SCRIPT.into(), json!({"title": null, "args": []}));
    let (_, req) = build_request(Tab::Txt2img, &sn, &CaptureOptions::default()).unwrap();
    assert!(!req.params.contains_key("script_name"));
}

#[test]
fn the_control_table_and_its_left_out_list_do_not_overlap() {
    for (id, why) in control::CONTROL_LEFT_OUT {
        assert!(!why.is_empty());
        assert!(
            !control::CONTROL_FIELDS.iter().any(|c| c.id == *id),
            "{id} is both mapped and left out"
        );
    }
    let mut apis: Vec<&str> = control::CONTROL_FIELDS.iter().map(|c| c.api).collect();
    apis.sort_unstable();
    let n = apis.len();
    apis.dedup();
    assert_eq!(apis.len(), n, "an API field is mapped twice");
}

#[test]
fn hires_refiner_and_resize_mode() {
    let r = |id: &str| format!("txt2img_refine_accordion/{id}");
    let mut sn = txt2img_defaults();
    sn.insert(r("txt2img_enable_hr"), json!(true));
    sn.insert(r("txt2img_resize_mode"), s("Fixed"));
    sn.insert(r("txt2img_steps_alt"), s("10"));
    sn.insert(r("txt2img_refiner_prompt"), s("r"));
    sn.insert(r("txt2img_denoising_strength"), s("0.45"));
    sn.insert("txt2img_detailer_enabled".into(), json!(true));
    sn.insert("txt2img_detailer_strength".into(), s("0.4"));
    let (_, req) = build_request(Tab::Txt2img, &sn, &CaptureOptions::default()).unwrap();
    assert_eq!(req.params["enable_hr"], json!(true));
    assert_eq!(req.params["hr_resize_mode"], json!(1));
    assert_eq!(req.params["hr_second_pass_steps"], json!(10));
    assert_eq!(req.params["refiner_prompt"], json!("r"));
    assert_eq!(req.params["denoising_strength"], json!(0.45));
    assert_eq!(req.params["detailer_enabled"], json!(true));
    assert_eq!(req.params["detailer_strength"], json!(0.4));
    // img2img: the same ids inside "Refine" are the hires fields, outside the main ones.
    let ri = |id: &str| format!("img2img_refine_accordion/{id}");
    let sn = snap(&[
        (IMG2IMG_INPUT, json!({"image": "data:image/png;base64,A"})),
        ("img2img_denoising_strength", s("0.6")),
        (&ri("img2img_denoising_strength"), s("0.25")),
        ("img2img_width", s("0")),
        (&ri("img2img_width"), s("512")),
        ("img2img_refiner_start", s("0.2")),
        (&ri("img2img_refiner_start"), s("0.4")),
    ]);
    let (_, req) = build_request(Tab::Img2img, &sn, &CaptureOptions::default()).unwrap();
    let p = &req.params;
    assert_eq!(
        (
            p["denoising_strength"].clone(),
            p["hr_denoising_strength"].clone()
        ),
        (json!(0.6), json!(0.25))
    );
    assert_eq!(
        (p["width"].clone(), p["hr_resize_x"].clone()),
        (json!(0), json!(512))
    );
    assert_eq!(
        (p["refiner_start"].clone(), p["hr_refiner_start"].clone()),
        (json!(0.2), json!(0.4))
    );
}

#[test]
fn empty_numbers_are_left_out_and_name_is_kept() {
    let mut sn = txt2img_defaults();
    sn.insert("txt2img_steps".into(), s(""));
    let (_, req) = build_request(
        Tab::Txt2img,
        &sn,
        &CaptureOptions {
            checkpoint: DropdownChoice::Current,
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
    assert_eq!(
        get(CHECKPOINT_ID),
        None,
        "the checkpoint goes to the extension's dropdown"
    );
    assert_eq!(
        fill_extras(&params).checkpoint.as_deref(),
        Some("Diffusers/tiny-sd15")
    );
    // Round trip: reading the filled values back gives the same request.
    let sn: Snapshot = plan
        .into_iter()
        .map(|(i, _, v)| (i.to_owned(), v))
        .collect();
    let mut sn2 = sn.clone();
    sn2.insert(IMG2IMG_INPUT.into(), s("data:image/png;base64,AA"));
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

/// The recorded SD.Next pages (`shared/fixtures/sdnext/ui`), found as the tests crate finds
/// them (`scheduler_tests::fixtures::shared_dir`): `$SHARED_DIR`, else `shared/` beside the
/// repository, else beside the folder holding a git worktree. Absent: fails under `CI=true`, else `None` with a printed message (the
/// caller skips).
fn recorded_ui_pages() -> Option<std::path::PathBuf> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let shared = match std::env::var_os("SHARED_DIR").filter(|d| !d.is_empty()) {
        Some(d) => vec![std::path::PathBuf::from(d)],
        None => vec![root.join("../shared"), root.join("../../shared")],
    };
    let found = shared
        .into_iter()
        .map(|d| d.join("fixtures/sdnext/ui"))
        .find(|d| d.is_dir());
    if found.is_none() {
        let what = "the recorded SD.Next pages (shared/fixtures/sdnext/ui; the project's shared/ \
                    folder beside the repository, as ../shared, or SHARED_DIR)";
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "missing prerequisite in CI: {what}"
        );
        eprintln!("skipped: missing prerequisite: {what}");
    }
    found
}

/// Every id of the table exists in the recorded Modern and Standard pages.
#[test]
fn mapped_ids_exist_in_recorded_pages() {
    let Some(dir) = recorded_ui_pages() else {
        return;
    };
    for theme in ["modern-dom.html", "standard-dom.html"] {
        let path = dir.join(theme);
        let html = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("recorded page {}: {e}", path.display()));
        let mut missing = Vec::new();
        for tab in Tab::ALL {
            for (loc, _) in ids_for(tab) {
                if loc.starts_with('@') {
                    continue;
                }
                for id in loc.split('/') {
                    if !html.contains(&format!("id=\"{id}\"")) {
                        missing.push(id);
                    }
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

#[test]
fn a_mask_writes_its_settings_into_the_infotext_like_generate() {
    // SD.Next's img2img UI adds `Mask blur/alpha/padding/invert/area` to the infotext; the
    // API does not, so the request carries them as `extra.extra_generation_params`.
    let sn = snap(&[
        ("img2img_prompt", s("p")),
        (IMG2IMG_MODE, json!(1)),
        (
            IMG2IMG_INPUT,
            json!({"image": "data:image/png;base64,IMG", "mask": "data:image/png;base64,MASK"}),
        ),
        ("img2img_mask_blur", s("8")),
        (MASK_ALPHA_ID, s("1")),
        ("img2img_inpaint_full_res", json!(1)),
        ("img2img_inpaint_full_res_padding", s("16")),
        ("img2img_mask_mode", json!(1)),
    ]);
    let (_, req) = build_request(Tab::Img2img, &sn, &CaptureOptions::default()).unwrap();
    assert_eq!(
        req.params["extra"],
        json!({"extra_generation_params": {"Mask blur": 8, "Mask alpha": 1.0,
            "Mask padding": 16, "Mask invert": "invert", "Mask area": "masked"}})
    );
    // No mask: no mask settings in the infotext (as Generate).
    let mut plain = sn.clone();
    plain.insert(IMG2IMG_MODE.into(), json!(0));
    plain.insert(
        IMG2IMG_INPUT.into(),
        json!({"image": "data:image/png;base64,IMG"}),
    );
    let (_, req) = build_request(Tab::Img2img, &plain, &CaptureOptions::default()).unwrap();
    assert!(
        !req.params.contains_key("extra"),
        "{:?}",
        req.params.get("extra")
    );
}

#[test]
fn the_detailer_settings_shown_at_enqueue_travel_with_the_task() {
    // In the page they are global options (saved as they change); the task keeps them.
    for (tab, p) in [(Tab::Txt2img, "txt2img"), (Tab::Control, "control")] {
        let mut sn = if tab == Tab::Control {
            control_snapshot()
        } else {
            txt2img_defaults()
        };
        for (id, v) in [
            ("detailer_enabled", json!(true)),
            ("detailers", json!(["face-yolo8n", "hand_yolov8n"])),
            ("detailer_classes", s("face")),
            ("detailer_seg", json!(true)),
            ("detailer_save", json!(false)),
            ("detailer_merge", json!(true)),
            ("detailer_sort", json!(false)),
            ("detailer_max", s("3")),
            ("detailer_padding", s("20")),
            ("detailer_blur", s("10")),
            ("detailer_conf", s("0.6")),
            ("detailer_iou", s("0.5")),
            ("detailer_min_size", s("0.05")),
            ("detailer_max_size", s("0.9")),
            ("detailer_renoise", s("1.1")),
            ("detailer_renoise_end", s("0.8")),
        ] {
            sn.insert(format!("{p}_{id}"), v);
        }
        let (_, req) = build_request(tab, &sn, &CaptureOptions::default()).unwrap();
        let got: Map<String, Value> = req
            .params
            .iter()
            .filter(|(k, _)| k.starts_with("detailer_") && k.as_str() != "detailer_enabled")
            .map(|(k, v)| (k.clone(), v.clone()))
            .filter(|(k, _)| {
                !["detailer_prompt", "detailer_negative", "detailer_steps"].contains(&k.as_str())
                    && !k.starts_with("detailer_strength")
                    && !k.starts_with("detailer_resolution")
            })
            .collect();
        assert_eq!(
            Value::Object(got),
            json!({"detailer_models": ["face-yolo8n", "hand_yolov8n"], "detailer_classes": "face",
                "detailer_segmentation": true, "detailer_include_detections": false,
                "detailer_merge": true, "detailer_sort": false, "detailer_max": 3,
                "detailer_padding": 20, "detailer_blur": 10, "detailer_conf": 0.6,
                "detailer_iou": 0.5, "detailer_min_size": 0.05, "detailer_max_size": 0.9,
                "detailer_sigma_adjust": 1.1, "detailer_sigma_adjust_max": 0.8}),
            "{p}"
        );
        assert_eq!(req.params["detailer_enabled"], json!(true), "{p}");
    }
}
