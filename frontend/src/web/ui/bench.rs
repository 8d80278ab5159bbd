//! Test hook (feature `test-hooks`, never shipped): `panel.html?bench=N` renders the history
//! list over N synthetic finished tasks with the thumbnail column on (thumbnails made
//! locally, lazily, through the same loader as the host's), then scrolls it from top to
//! bottom in viewport-sized steps. Figures land on `<body>`:
//! `data-first-render-ms` (mount to first rows in the DOM), `data-rendered-rows`,
//! `data-scroll-steps`, `data-scroll-avg-ms` / `data-scroll-max-ms` (a scroll step: setting
//! `scrollTop` until the list shows the new window), `data-thumbs-first-screen` (thumbnails
//! asked for by the first screen) and `data-thumbs-fetched` (over the whole run: only rows
//! that were on screen ask).

use std::rc::Rc;

use scheduler_api::{Task, TaskStatus, WireTime};
use serde_json::{Map, json};
use yew::prelude::*;

use super::history::{ListKind, ROW_H, TaskList, TaskListProps};
use super::images::{BENCH_HOST, fetched};
use crate::state::Columns;
use crate::web::host::{Host, Platform};
use crate::web::util;

/// Starts the bench when the URL asks for it.
pub fn requested() -> bool {
    let search = web_sys::window()
        .and_then(|w| w.location().search().ok())
        .unwrap_or_default();
    if let Some(n) = search
        .trim_start_matches('?')
        .split('&')
        .find_map(|kv| kv.strip_prefix("bench="))
        .and_then(|n| n.parse::<usize>().ok())
    {
        wasm_bindgen_futures::spawn_local(bench(n));
        return true;
    }
    false
}

fn bench_task(i: usize) -> Task {
    let mut params = Map::new();
    params.insert("prompt".into(), json!(format!("benchmark prompt {i}")));
    params.insert("checkpoint".into(), json!(format!("model-{}", i % 7)));
    params.insert("sampler_name".into(), json!("Euler a"));
    params.insert("steps".into(), json!(20));
    params.insert("cfg_scale".into(), json!(6));
    params.insert("width".into(), json!(512));
    params.insert("height".into(), json!(512));
    Task {
        id: format!("bench-{i:05}"),
        api_task_id: None,
        api_task_callback: None,
        name: None,
        task_type: scheduler_api::TaskType::Txt2img,
        status: TaskStatus::Done,
        params,
        priority: i as i64,
        position: None,
        result: None,
        bookmarked: false,
        created_at: WireTime::Epoch(1_700_000_000_000),
        updated_at: WireTime::Epoch(1_700_000_000_000),
        attempts: 1,
        backend: None,
        error: None,
        image_count: 1,
        has_page_snapshot: false,
        next_run_at: None,
        projection: None,
        group_id: None,
        started_at: None,
        finished_at: Some(WireTime::Epoch(1_700_000_000_000)),
    }
}

/// Waits (yielding to the browser) until `f` holds, at most `tries` turns.
async fn until(tries: u32, f: impl Fn() -> bool) -> bool {
    for _ in 0..tries {
        if f() {
            return true;
        }
        util::sleep_ms(0).await;
    }
    f()
}

async fn bench(n: usize) {
    let d = util::document();
    let Some(root) = d.get_element_by_id("app") else {
        return;
    };
    let _ = root.set_attribute("style", "height:100vh;display:flex;flex-direction:column");
    let rows = Rc::new((0..n).map(bench_task).collect::<Vec<_>>());
    let host = Host {
        base: BENCH_HOST.into(),
        token: String::new(),
        platform: Platform::Extension,
    };
    let t0 = util::perf_now();
    let props = TaskListProps {
        kind: ListKind::History,
        rows,
        total: n as i64,
        cols: Columns::default(),
        host,
        picked: Default::default(),
        on_pick: Callback::noop(),
        on_pick_all: Callback::noop(),
        on_need_more: Callback::noop(),
        on_action: Callback::noop(),
        eta: None,
    };
    let handle = yew::Renderer::<TaskList>::with_root_and_props(root.clone(), props).render();
    until(1000, || {
        root.query_selector(".hrow").ok().flatten().is_some()
    })
    .await;
    let first = util::perf_now() - t0;
    let rendered = root
        .query_selector_all(".hrow")
        .map(|l| l.length())
        .unwrap_or(0);
    // The first figures at once (a reader may not wait for the scroll).
    if let Some(b) = d.body() {
        let _ = b.set_attribute("data-first-render-ms", &format!("{first:.1}"));
        let _ = b.set_attribute("data-rendered-rows", &rendered.to_string());
    }
    // The first screen's thumbnails arrive (only those rows ask).
    until(1000, || {
        root.query_selector_all(".hrow img.thumb")
            .map(|l| l.length())
            .unwrap_or(0)
            == rendered
    })
    .await;
    let thumbs_first = fetched();
    // Scroll top to bottom, a viewport at a time.
    let list: Option<web_sys::HtmlElement> = root
        .query_selector(".vlist")
        .ok()
        .flatten()
        .and_then(|e| wasm_bindgen::JsCast::dyn_into(e).ok());
    let (mut steps, mut sum, mut max) = (0u32, 0.0f64, 0.0f64);
    if let Some(list) = list {
        let view = list.client_height().max(1);
        let end = (n as i32) * ROW_H as i32;
        let mut top = 0;
        while top + view < end && steps < 2000 {
            top += view;
            let t = util::perf_now();
            list.set_scroll_top(top);
            let _ = list.dispatch_event(&web_sys::Event::new("scroll").expect("event"));
            // The window the list computes for where the browser really scrolled to (the
            // last step is clamped at the bottom).
            let at = list.scroll_top().max(0) as u32;
            let want = crate::state::window(at, view as u32, ROW_H, n, 8)
                .start
                .to_string();
            until(1000, || {
                list.get_attribute("data-start").as_deref() == Some(&want)
            })
            .await;
            let ms = util::perf_now() - t;
            steps += 1;
            sum += ms;
            max = max.max(ms);
        }
    }
    if let Some(b) = d.body() {
        let set = |k: &str, v: String| {
            let _ = b.set_attribute(k, &v);
        };
        set("data-scroll-steps", steps.to_string());
        set(
            "data-scroll-avg-ms",
            format!("{:.2}", sum / f64::from(steps.max(1))),
        );
        set("data-scroll-max-ms", format!("{max:.1}"));
        set("data-thumbs-first-screen", thumbs_first.to_string());
        set("data-thumbs-fetched", fetched().to_string());
    }
    std::mem::forget(handle);
}
