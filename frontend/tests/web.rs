//! wasm-bindgen tests in headless Chromium (`cargo test -p frontend --target
//! wasm32-unknown-unknown`, runner `wasm-bindgen-test-runner`, `CHROMEDRIVER=/usr/bin/chromedriver`):
//! capture from a Gradio-like DOM, writing values back, page detection, and the virtualised
//! history list with 10,000 tasks (first render measured and printed).
#![cfg(target_arch = "wasm32")]

use std::rc::Rc;

use frontend::capture::{self, CaptureOptions, Tab, build_request, dom};
use frontend::state::{Col, Columns};
use frontend::web::host::{Host, Platform};
use frontend::web::ui::history::{ListKind, ROW_H, TaskList, TaskListProps};
use scheduler_api::{Task, TaskStatus, TaskType, WireTime};
use serde_json::{Map, json};
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

fn document() -> web_sys::Document {
    web_sys::window().unwrap().document().unwrap()
}

fn fixture(html: &str) -> web_sys::Element {
    let d = document();
    let div = d.create_element("div").unwrap();
    div.set_inner_html(html);
    d.body().unwrap().append_child(&div).unwrap();
    div
}

async fn tick(ms: u32) {
    gloo::timers::future::TimeoutFuture::new(ms).await;
}

fn now() -> f64 {
    web_sys::window().unwrap().performance().unwrap().now()
}

const GRADIO_TXT2IMG: &str = r#"
<div id="txt2img_prompt" class="block gradio-textbox"><label><textarea>a lighthouse</textarea></label></div>
<div id="txt2img_neg_prompt" class="block gradio-textbox"><label><textarea>fog</textarea></label></div>
<div id="txt2img_styles" class="block gradio-dropdown multiselect"><div class="wrap-inner">
  <div class="token"><span>Photo</span><div class="token-remove">×</div></div>
  <div class="token"><span>Moody</span><div class="token-remove">×</div></div><input type="text" value=""></div></div>
<div id="txt2img_steps" class="block gradio-slider"><input type="number" value="30"><input type="range" value="30"></div>
<div id="txt2img_sampling" class="block gradio-dropdown"><input type="text" value="Euler a"></div>
<div id="txt2img_cfg_scale" class="block gradio-slider"><input type="number" value="-1"><input type="range" value="-1"></div>
<div id="txt2img_image_cfg_rescale" class="block gradio-slider"><input type="number" value="-1"></div>
<div id="txt2img_batch_count" class="block gradio-slider"><input type="number" value="3"></div>
<div id="txt2img_seed" class="block gradio-number"><input type="number" value="42"></div>
<div id="txt2img_refine_accordion"><div id="txt2img_enable_hr" class="block gradio-checkbox"><label><input type="checkbox" checked></label></div></div>
<div id="setting_sd_model_checkpoint" class="block gradio-dropdown"><input type="text" value="models/sd15"></div>
"#;

#[wasm_bindgen_test]
async fn capture_reads_gradio_markup_by_id() {
    let f = fixture(GRADIO_TXT2IMG);
    let snap = dom::read_snapshot(Tab::Txt2img).await;
    let (ty, req) = build_request(Tab::Txt2img, &snap, &CaptureOptions::default()).unwrap();
    assert_eq!(ty, TaskType::Txt2img);
    let p = &req.params;
    assert_eq!(p["prompt"], json!("a lighthouse"));
    assert_eq!(p["negative_prompt"], json!("fog"));
    assert_eq!(p["styles"], json!(["Photo", "Moody"]));
    assert_eq!(p["steps"], json!(30));
    assert_eq!(p["sampler_name"], json!("Euler a"));
    assert_eq!(p["cfg_scale"], json!(-1.0));
    assert_eq!(p["cfg_rescale"], json!(-1.0));
    assert_eq!(p["n_iter"], json!(3));
    assert_eq!(p["seed"], json!(42));
    assert_eq!(p["enable_hr"], json!(true));
    assert_eq!(req.checkpoint.as_deref(), Some("models/sd15"));
    assert_eq!(
        req.page_snapshot.as_ref().unwrap()["txt2img_steps"],
        json!("30")
    );
    f.remove();
}

#[wasm_bindgen_test]
async fn write_back_then_read_gives_the_same_values() {
    let f = fixture(GRADIO_TXT2IMG);
    let mut params = Map::new();
    params.insert("prompt".into(), json!("a castle"));
    params.insert("steps".into(), json!(12));
    params.insert("enable_hr".into(), json!(false));
    params.insert("cfg_scale".into(), json!(4.5));
    for (id, kind, v) in capture::fill_plan(Tab::Txt2img, &params) {
        dom::write_raw(id, kind, &v);
    }
    let snap = dom::read_snapshot(Tab::Txt2img).await;
    let (_, req) = build_request(Tab::Txt2img, &snap, &CaptureOptions::default()).unwrap();
    assert_eq!(req.params["prompt"], json!("a castle"));
    assert_eq!(req.params["steps"], json!(12));
    assert_eq!(req.params["enable_hr"], json!(false));
    assert_eq!(req.params["cfg_scale"], json!(4.5));
    f.remove();
}

#[wasm_bindgen_test]
async fn img2img_init_image_is_a_data_url() {
    let png = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==";
    let f = fixture(&format!(
        r#"<div id="img2img_prompt"><textarea>p</textarea></div>
           <div id="img2img_width"><input type="number" value="0"></div>
           <div id="img2img_image"><img src="{png}"></div>"#
    ));
    let snap = dom::read_snapshot(Tab::Img2img).await;
    let (ty, req) = build_request(Tab::Img2img, &snap, &CaptureOptions::default()).unwrap();
    assert_eq!(ty, TaskType::Img2img);
    assert_eq!(req.params["init_images"], json!([png]));
    assert_eq!(req.params["width"], json!(0));
    f.remove();
}

#[wasm_bindgen_test]
fn page_detection_uses_the_page_markers() {
    let d = document();
    let old = d.title();
    d.set_title("SD.Next 45%");
    assert!(frontend::web::content::is_sdnext(&d));
    d.set_title("Some other app");
    assert!(!frontend::web::content::is_sdnext(&d));
    d.set_title(&old);
}

fn task(i: usize) -> Task {
    let mut params = Map::new();
    params.insert("prompt".into(), json!(format!("prompt number {i}")));
    params.insert("steps".into(), json!(20));
    params.insert("width".into(), json!(512));
    params.insert("height".into(), json!(512));
    Task {
        id: format!("task-{i:05}"),
        api_task_id: None,
        api_task_callback: None,
        name: None,
        task_type: TaskType::Txt2img,
        status: if i.is_multiple_of(7) {
            TaskStatus::Failed
        } else {
            TaskStatus::Done
        },
        params,
        priority: i as i64,
        position: None,
        result: None,
        bookmarked: i.is_multiple_of(11),
        created_at: WireTime::Epoch(0),
        updated_at: WireTime::Epoch(0),
        attempts: 1,
        backend: None,
        error: None,
        image_count: 1,
        has_page_snapshot: false,
        next_run_at: None,
        projection: None,
        group_id: None,
        started_at: None,
        finished_at: None,
    }
}

/// 10,000 history tasks: the first render puts only the visible window in the DOM; the time
/// from mount to rows on screen is printed (a measurement, not an assertion).
#[wasm_bindgen_test]
async fn history_list_with_10000_tasks_renders_a_window() {
    let rows: Rc<Vec<Task>> = Rc::new((0..10_000).map(task).collect());
    let root = fixture("");
    root.set_attribute("style", "height:600px;display:flex;flex-direction:column")
        .unwrap();
    let props = TaskListProps {
        kind: ListKind::History,
        rows: rows.clone(),
        total: 10_000,
        // No thumbnails: there is no host here.
        cols: Columns::default().with(Col::Thumb, false),
        host: Host {
            base: "http://127.0.0.1:9".into(),
            token: String::new(),
            platform: Platform::Extension,
        },
        picked: Default::default(),
        on_pick: Default::default(),
        on_pick_all: Default::default(),
        on_need_more: Default::default(),
        on_action: Default::default(),
        eta: None,
    };
    let t0 = now();
    let handle = yew::Renderer::<TaskList>::with_root_and_props(root.clone(), props).render();
    let mut n = 0;
    for _ in 0..200 {
        n = root.query_selector_all(".hrow").unwrap().length();
        if n > 0 {
            break;
        }
        tick(0).await;
    }
    let ms = now() - t0;
    console_log!("history first render with 10000 tasks: {ms:.1} ms, {n} rows in the DOM");
    web_sys::console::log_1(&format!("FIGURE history_10k_first_render_ms={ms:.1}").into());
    assert!(n > 0, "rows rendered");
    assert!(n < 100, "virtualised: {n} rows in the DOM for 10000 tasks");
    let list = root.query_selector(".vlist").unwrap().unwrap();
    assert_eq!(list.get_attribute("data-total").as_deref(), Some("10000"));
    // Scrolling to the middle renders that window.
    list.set_scroll_top(ROW_H as i32 * 5000);
    list.dispatch_event(&web_sys::Event::new("scroll").unwrap())
        .unwrap();
    let mut found = false;
    for _ in 0..100 {
        tick(0).await;
        if root
            .query_selector("[data-task-id=\"task-05000\"]")
            .unwrap()
            .is_some()
        {
            found = true;
            break;
        }
    }
    assert!(found, "row 5000 rendered after scrolling");
    handle.destroy();
    root.remove();
}
