//! The content script: detects SD.Next, waits for its UI to settle, puts an Enqueue button
//! (with the checkpoint dropdown) beside Generate on txt2img, img2img and Control, handles
//! the shortcut and the in-page right-click menu, and hosts the task panel drawer (an
//! extension-page iframe, so the page's CSS and CSP don't apply to it).

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use scheduler_api::EnqueueResponse;
use serde_json::Value;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use web_sys::{Document, Element, HtmlElement, HtmlSelectElement, ShadowRoot};

use super::button::ensure_buttons;
use super::{button, chrome, util};
use crate::capture::{
    self, CaptureOptions, DropdownChoice, Tab, build_request, checkpoint_options, dom,
};
use crate::messages::{Captured, Filled, Reply, ToContent, ToWorker};
use crate::state::{ExtOptions, Shortcut};

/// Quiet time (no DOM mutation) after which the page counts as assembled.
const QUIET_MS: f64 = 700.0;
/// Give up waiting for quiet after Generate has been present this long.
const MAX_SETTLE_MS: f64 = 20_000.0;

/// The content script's state.
struct Ctx {
    opts: RefCell<ExtOptions>,
    titles: RefCell<Vec<String>>,
    last_mutation: Cell<f64>,
    ensure_pending: Cell<bool>,
    shadow: ShadowRoot,
}

thread_local! {
    static CTX: RefCell<Option<Rc<Ctx>>> = const { RefCell::new(None) };
}

fn ctx() -> Option<Rc<Ctx>> {
    CTX.with(|c| c.borrow().clone())
}

fn doc() -> Document {
    util::document()
}

/// Whether the page carries SD.Next's own markers (`bridge.js` checks the same ones; the
/// title rule is the popup's too: `state::sites::is_sdnext_title`).
pub fn is_sdnext(d: &Document) -> bool {
    crate::state::sites::is_sdnext_title(&d.title())
        || d.get_element_by_id("txt2img_prompt").is_some()
        || (d.query_selector("gradio-app").ok().flatten().is_some()
            && d.get_element_by_id("tabs").is_some())
}

/// Entry point of the content script.
pub fn start() {
    wasm_bindgen_futures::spawn_local(run());
}

fn root_attr(name: &str, value: &str) {
    if let Some(r) = doc().document_element() {
        let _ = r.set_attribute(name, value);
    }
}

async fn run() {
    let d = doc();
    // The title and <gradio-app> are in the initial HTML; the form arrives later.
    let t0 = util::perf_now();
    while !is_sdnext(&d) {
        if util::perf_now() - t0 > 10_000.0 {
            // Test hook: the browser tests wait for this to check nothing was added.
            #[cfg(feature = "test-hooks")]
            util::console_log("[agent-scheduler] not an SD.Next page: nothing added");
            return;
        }
        util::sleep_ms(250).await;
    }
    root_attr("data-sdq-state", "waiting");
    let shadow = make_overlay();
    let c = Rc::new(Ctx {
        opts: RefCell::new(chrome::load_options().await),
        titles: RefCell::new(vec![]),
        last_mutation: Cell::new(util::perf_now()),
        ensure_pending: Cell::new(false),
        shadow,
    });
    CTX.with(|x| *x.borrow_mut() = Some(c.clone()));
    configure_buttons(&c.opts.borrow());
    install_message_listener();
    observe_mutations();

    // Ready = a Generate button exists and the DOM has been quiet for QUIET_MS (the Modern UI
    // moves elements around for seconds after they first appear).
    let mut seen_generate: Option<f64> = None;
    loop {
        let now = util::perf_now();
        let gen_present = Tab::ALL.iter().any(|t| {
            d.get_element_by_id(&format!("{}_generate", t.prefix()))
                .is_some()
        });
        if gen_present {
            let since = *seen_generate.get_or_insert(now);
            if now - c.last_mutation.get() >= QUIET_MS || now - since >= MAX_SETTLE_MS {
                break;
            }
        }
        util::sleep_ms(100).await;
    }
    let ready_at = util::perf_now();
    ensure_buttons();
    let shown_at = util::perf_now();
    root_attr("data-sdq-ready-ms", &format!("{ready_at:.1}"));
    root_attr("data-sdq-button-ms", &format!("{shown_at:.1}"));
    root_attr(
        "data-sdq-ready-to-button-ms",
        &format!("{:.2}", shown_at - ready_at),
    );
    root_attr("data-sdq-state", "ready");
    install_shortcut();
    storage_listener();
    // The Modern toolbar's room changes with the window: re-fit the button.
    let on_resize = Closure::<dyn FnMut()>::new(ensure_buttons);
    if let Some(w) = web_sys::window() {
        let _ = w.add_event_listener_with_callback("resize", on_resize.as_ref().unchecked_ref());
    }
    on_resize.forget();
    // Safety net beside the mutation observer: the Modern UI's portal code can hide the
    // Enqueue slot (an attribute change) after we filled it.
    wasm_bindgen_futures::spawn_local(async {
        loop {
            util::sleep_ms(2000).await;
            ensure_buttons();
        }
    });
    wasm_bindgen_futures::spawn_local(load_titles());
}

/// What the Enqueue buttons do (the button module knows nothing of this one).
const BUTTON_HOOKS: button::Hooks = button::Hooks {
    enqueue: |tab| wasm_bindgen_futures::spawn_local(do_enqueue(tab, None, None)),
    menu: show_menu,
    fill_checkpoints: fill_select,
    refresh_checkpoints: || wasm_bindgen_futures::spawn_local(load_titles()),
};

/// Hands the options' layout and the hooks to the button module.
fn configure_buttons(opts: &ExtOptions) {
    button::configure(
        button::Layout {
            placement: opts.placement,
            hide_checkpoint: opts.hide_checkpoint,
        },
        BUTTON_HOOKS,
    );
}

async fn load_titles() {
    if let Ok(titles) = chrome::ask_worker::<Vec<String>>(&ToWorker::Checkpoints).await {
        if let Some(c) = ctx() {
            *c.titles.borrow_mut() = titles;
        }
        for tab in Tab::ALL {
            if let Some(sel) = doc().get_element_by_id(&format!("sdq-{}-ckpt", tab.prefix())) {
                fill_select(&sel);
            }
        }
    }
}

fn fill_select(sel: &Element) {
    let Some(c) = ctx() else { return };
    let Some(sel) = sel.dyn_ref::<HtmlSelectElement>() else {
        return;
    };
    let keep = sel.value();
    sel.set_inner_html("");
    for (value, label) in checkpoint_options(&c.titles.borrow()) {
        if let Ok(o) = doc().create_element("option") {
            let _ = o.set_attribute("value", &value);
            o.set_text_content(Some(&label));
            let _ = sel.append_child(&o);
        }
    }
    if !keep.is_empty() {
        sel.set_value(&keep);
    }
    if sel.value().is_empty() {
        sel.set_value(&DropdownChoice::Current.to_value());
    }
}

fn observe_mutations() {
    let cb =
        Closure::<dyn FnMut(js_sys::Array, JsValue)>::new(move |_r: js_sys::Array, _o: JsValue| {
            let Some(c) = ctx() else { return };
            c.last_mutation.set(util::perf_now());
            if doc()
                .document_element()
                .and_then(|r| r.get_attribute("data-sdq-state"))
                .as_deref()
                != Some("ready")
            {
                return;
            }
            if !c.ensure_pending.replace(true) {
                wasm_bindgen_futures::spawn_local(async {
                    util::sleep_ms(150).await;
                    if let Some(c) = ctx() {
                        c.ensure_pending.set(false);
                    }
                    ensure_buttons();
                });
            }
        });
    if let Ok(mo) = web_sys::MutationObserver::new(cb.as_ref().unchecked_ref()) {
        let init = web_sys::MutationObserverInit::new();
        init.set_child_list(true);
        init.set_subtree(true);
        if let Some(b) = doc().body() {
            let _ = mo.observe_with_options(&b, &init);
        }
    }
    cb.forget();
}

fn choice_for(tab: Tab) -> DropdownChoice {
    doc()
        .get_element_by_id(&format!("sdq-{}-ckpt", tab.prefix()))
        .and_then(|s| s.dyn_into::<HtmlSelectElement>().ok())
        .map(|s| DropdownChoice::from_value(&s.value()))
        .unwrap_or_default()
}

/// Captures `tab` and enqueues it; returns the host's answer.
pub async fn enqueue(
    tab: Tab,
    name: Option<String>,
    checkpoint: Option<DropdownChoice>,
) -> Result<EnqueueResponse, String> {
    let snap = dom::read_snapshot(tab).await;
    let opts = CaptureOptions {
        checkpoint: checkpoint.unwrap_or_else(|| choice_for(tab)),
        name,
    };
    let (task_type, request) = build_request(tab, &snap, &opts).map_err(|e| e.to_string())?;
    chrome::ask_worker(&ToWorker::Enqueue { task_type, request }).await
}

async fn do_enqueue(tab: Tab, name: Option<String>, checkpoint: Option<DropdownChoice>) {
    let btn = button::button(tab);
    if let Some(b) = &btn {
        let _ = b.set_attribute("data-sdq-state", "sending");
    }
    let res = enqueue(tab, name, checkpoint).await;
    let Some(b) = btn else { return };
    match res {
        Ok(r) => {
            let _ = b.set_attribute("data-sdq-state", "queued");
            let _ = b.set_attribute("data-sdq-task-ids", &r.task_ids.join(","));
            button::set_label(&b, "Queued");
            toast(
                &if r.task_ids.len() > 1 {
                    format!("Queued {} tasks", r.task_ids.len())
                } else {
                    "Queued".to_owned()
                },
                false,
            );
        }
        Err(e) => {
            let _ = b.set_attribute("data-sdq-state", "error");
            let _ = b.set_attribute("data-sdq-error", &e);
            button::set_label(&b, "Not queued");
            toast(&format!("Enqueue failed: {e}"), true);
        }
    }
    util::sleep_ms(1500).await;
    button::set_label(&b, "Enqueue");
}

/// The tab whose Generate button is visible (the active one), else txt2img.
pub fn active_tab() -> Tab {
    let d = doc();
    Tab::ALL
        .into_iter()
        .find(|t| {
            d.get_element_by_id(&format!("{}_generate", t.prefix()))
                .is_some_and(|g| util::is_shown(&g))
        })
        .unwrap_or(Tab::Txt2img)
}

fn install_shortcut() {
    let cb = Closure::<dyn FnMut(web_sys::KeyboardEvent)>::new(|e: web_sys::KeyboardEvent| {
        let Some(c) = ctx() else { return };
        let Some(sc) = Shortcut::parse(&c.opts.borrow().shortcut) else {
            return;
        };
        if sc.matches(
            &e.code(),
            e.ctrl_key(),
            e.meta_key(),
            e.alt_key(),
            e.shift_key(),
        ) {
            e.prevent_default();
            e.stop_propagation();
            wasm_bindgen_futures::spawn_local(do_enqueue(active_tab(), None, None));
        }
    });
    if let Some(w) = web_sys::window() {
        let _ = w.add_event_listener_with_callback_and_bool(
            "keydown",
            cb.as_ref().unchecked_ref(),
            true,
        );
    }
    cb.forget();
}

fn storage_listener() {
    let cb = Closure::<dyn FnMut(JsValue, JsValue)>::new(|changes: JsValue, _area: JsValue| {
        let ch = chrome::from_js(&changes);
        if let Some(new) = ch.pointer("/options/newValue")
            && let Some(c) = ctx()
        {
            *c.opts.borrow_mut() = ExtOptions::from_json(new);
            configure_buttons(&c.opts.borrow());
            // Rebuild the wrappers with the new placement / dropdown option.
            button::remove_all();
            ensure_buttons();
        }
    });
    chrome::storage_on_changed_add_listener(cb.as_ref().unchecked_ref());
    cb.forget();
}

// ---- the overlay: toasts, the right-click menu and the panel drawer (shadow root) ----

const OVERLAY_CSS: &str = r#"
:host { all: initial; }
.toasts { position: fixed; left: 50%; bottom: 24px; transform: translateX(-50%); z-index: 2147483647;
  display: flex; flex-direction: column; gap: 6px; font: 13px system-ui, sans-serif; }
.toast { background: #1f6f43; color: #fff; padding: 8px 14px; border-radius: 6px; box-shadow: 0 2px 8px #0006; }
.toast.error { background: #9b2226; }
.menu { position: fixed; z-index: 2147483647; background: #222; color: #eee; border: 1px solid #555;
  border-radius: 6px; padding: 4px 0; font: 13px system-ui, sans-serif; min-width: 220px; box-shadow: 0 4px 14px #0008; }
.menu button { all: unset; display: block; width: 100%; box-sizing: border-box; padding: 6px 14px; cursor: pointer; }
.menu button:hover { background: #3a3a3a; }
.toggle { position: fixed; right: 0; top: 40%; z-index: 2147483646; writing-mode: vertical-rl;
  background: #334; color: #fff; border: 0; border-radius: 6px 0 0 6px; padding: 10px 5px; cursor: pointer;
  font: 12px system-ui, sans-serif; opacity: .85; }
.drawer { position: fixed; top: 0; right: 0; height: 100vh; width: min(560px, 96vw); z-index: 2147483646;
  box-shadow: -4px 0 16px #0007; background: #15161a; display: none; }
.drawer.open { display: block; }
.drawer iframe { border: 0; width: 100%; height: 100%; }
.drawer .close { position: absolute; left: -28px; top: 8px; background: #334; color: #fff; border: 0;
  border-radius: 6px 0 0 6px; padding: 4px 8px; cursor: pointer; }
"#;

fn make_overlay() -> ShadowRoot {
    let d = doc();
    let host = d.create_element("div").expect("div");
    host.set_id("sdq-host");
    let _ = d.document_element().expect("root").append_child(&host);
    let sr = host
        .attach_shadow(&web_sys::ShadowRootInit::new(web_sys::ShadowRootMode::Open))
        .expect("shadow");
    sr.set_inner_html(&format!(
        "<style>{OVERLAY_CSS}</style><div class=\"toasts\"></div>\
         <button class=\"toggle\" id=\"sdq-toggle\" title=\"Agent Scheduler task panel\">☰ Queue</button>\
         <div class=\"drawer\" id=\"sdq-drawer\"><button class=\"close\" id=\"sdq-close\">✕</button></div>"
    ));
    for id in ["sdq-toggle", "sdq-close"] {
        if let Some(b) = sr.get_element_by_id(id) {
            let cb = Closure::<dyn FnMut()>::new(toggle_panel);
            let _ = b.add_event_listener_with_callback("click", cb.as_ref().unchecked_ref());
            cb.forget();
        }
    }
    // A click elsewhere, or Escape, closes the menu; only when the user did it (trusted
    // events): SD.Next clicks its token-counter button from script 800 ms after typing.
    let close = Closure::<dyn FnMut(web_sys::Event)>::new(|e: web_sys::Event| {
        if !e.is_trusted() {
            return;
        }
        if let Some(k) = e.dyn_ref::<web_sys::KeyboardEvent>()
            && k.key() != "Escape"
        {
            return;
        }
        close_menu();
    });
    for ev in ["click", "keydown"] {
        let _ =
            d.add_event_listener_with_callback_and_bool(ev, close.as_ref().unchecked_ref(), true);
    }
    close.forget();
    sr
}

/// Opens or closes the panel drawer (the iframe is created on first open).
pub fn toggle_panel() {
    let Some(c) = ctx() else { return };
    let Some(drawer) = c.shadow.get_element_by_id("sdq-drawer") else {
        return;
    };
    if drawer.query_selector("iframe").ok().flatten().is_none()
        && let Ok(f) = doc().create_element("iframe")
    {
        let _ = f.set_attribute("src", &chrome::runtime_get_url("panel.html?embedded=1"));
        let _ = f.set_attribute("id", "sdq-panel-frame");
        let _ = drawer.append_child(&f);
    }
    let open = drawer.class_list().toggle("open").unwrap_or(false);
    root_attr("data-sdq-panel", if open { "open" } else { "closed" });
}

/// Shows a toast in the page for 3 s.
pub fn toast(text: &str, error: bool) {
    let Some(c) = ctx() else { return };
    let Ok(Some(list)) = c.shadow.query_selector(".toasts") else {
        return;
    };
    let Ok(t) = doc().create_element("div") else {
        return;
    };
    let _ = t.set_attribute("class", if error { "toast error" } else { "toast" });
    t.set_text_content(Some(text));
    let _ = list.append_child(&t);
    wasm_bindgen_futures::spawn_local(async move {
        util::sleep_ms(3000).await;
        t.remove();
    });
}

fn close_menu() {
    if let Some(c) = ctx()
        && let Ok(Some(m)) = c.shadow.query_selector(".menu")
    {
        m.remove();
    }
}

fn show_menu(tab: Tab, x: i32, y: i32) {
    close_menu();
    let Some(c) = ctx() else { return };
    let Ok(menu) = doc().create_element("div") else {
        return;
    };
    let _ = menu.set_attribute("class", "menu");
    let _ = menu.set_attribute("id", "sdq-menu");
    let _ = menu.set_attribute("style", &format!("left:{x}px;top:{y}px"));
    let items: [(&str, &str); 2] = [
        ("name", "Queue with task name"),
        ("all", "Queue with all checkpoints"),
    ];
    for (key, label) in items {
        let Ok(b) = doc().create_element("button") else {
            continue;
        };
        b.set_text_content(Some(label));
        let _ = b.set_attribute("data-action", key);
        let cb = Closure::<dyn FnMut(web_sys::Event)>::new(move |e: web_sys::Event| {
            e.stop_propagation();
            close_menu();
            match key {
                "name" => {
                    let name = web_sys::window()
                        .and_then(|w| w.prompt_with_message("Enter task name").ok().flatten());
                    if let Some(n) = name.filter(|n| !n.trim().is_empty()) {
                        wasm_bindgen_futures::spawn_local(do_enqueue(tab, Some(n), None));
                    }
                }
                _ => wasm_bindgen_futures::spawn_local(do_enqueue(
                    tab,
                    None,
                    Some(DropdownChoice::All),
                )),
            }
        });
        let _ = b.add_event_listener_with_callback("click", cb.as_ref().unchecked_ref());
        cb.forget();
        let _ = menu.append_child(&b);
    }
    let _ = c.shadow.append_child(&menu);
    // Opened at the pointer, and flipped to its left (above) when it would leave the window,
    // as a context menu does: the button can sit at the window's right edge, and the menu must
    // not cover the point pressed (a second right-click there reopens it).
    if let Some(w) = web_sys::window() {
        let vw = w.inner_width().ok().and_then(|v| v.as_f64()).unwrap_or(0.0);
        let vh = w
            .inner_height()
            .ok()
            .and_then(|v| v.as_f64())
            .unwrap_or(0.0);
        let r = menu.get_bounding_client_rect();
        let left = if r.right() > vw - 4.0 {
            (f64::from(x) - r.width() - 1.0).max(0.0)
        } else {
            f64::from(x)
        };
        let top = if r.bottom() > vh - 4.0 {
            (f64::from(y) - r.height() - 1.0).max(0.0)
        } else {
            f64::from(y)
        };
        let _ = menu.set_attribute("style", &format!("left:{left:.0}px;top:{top:.0}px"));
    }
}

// ---- messages from the service worker ----

fn install_message_listener() {
    let cb = Closure::<dyn FnMut(JsValue, JsValue, js_sys::Function) -> JsValue>::new(
        |msg: JsValue, _sender: JsValue, respond: js_sys::Function| -> JsValue {
            let msg = chrome::from_js(&msg);
            wasm_bindgen_futures::spawn_local(async move {
                let ans = on_message(msg).await;
                let _ = respond.call1(&JsValue::NULL, &chrome::to_js(&ans));
            });
            JsValue::TRUE
        },
    );
    chrome::on_message_add_listener(cb.as_ref().unchecked_ref());
    cb.forget();
}

async fn on_message(msg: Value) -> Value {
    let msg: ToContent = match serde_json::from_value(msg) {
        Ok(m) => m,
        Err(e) => return reply(Err::<(), _>(format!("unknown message: {e}"))),
    };
    match msg {
        ToContent::Capture { tab } => {
            let tab = tab.unwrap_or_else(active_tab);
            let snap = dom::read_snapshot(tab).await;
            reply(
                build_request(tab, &snap, &CaptureOptions::default())
                    .map(|(task_type, request)| Captured {
                        task_type,
                        tab,
                        request,
                    })
                    .map_err(|e| e.to_string()),
            )
        }
        ToContent::Fill { tab, params } => {
            let n = fill_page(tab, &params);
            toast(&format!("Filled {n} fields of {}", tab.prefix()), false);
            reply(Ok(Filled { filled: n }))
        }
        ToContent::Toast { text, error } => {
            toast(&text, error);
            crate::messages::ok_reply()
        }
    }
}

fn reply<T: serde::Serialize>(r: Result<T, String>) -> Value {
    serde_json::to_value(Reply::from(r)).unwrap_or(Value::Null)
}

/// Writes a stored request into `tab`'s form: the table's fields, the input image, the
/// checkpoint (into the extension's dropdown: choosing it in SD.Next's quicksettings would
/// load the model at once) and the script with its arguments. Returns how many were written.
fn fill_page(tab: Tab, params: &serde_json::Map<String, Value>) -> usize {
    switch_to(tab);
    let mut n = 0;
    for (id, kind, v) in capture::fill_plan(tab, params) {
        if dom::write_raw(id, kind, &v) {
            n += 1;
        }
    }
    let extras = capture::fill_extras(params);
    if let Some(img) = &extras.image {
        let url = if img.starts_with("data:") {
            img.clone()
        } else {
            format!("data:image/png;base64,{img}")
        };
        let ok = match tab {
            Tab::Img2img => dom::write_image("img2img_image", &url),
            Tab::Control => {
                crate::capture::bridge::call("kanvas_load", serde_json::json!({ "url": url }))
                    .is_some()
            }
            Tab::Txt2img => false,
        };
        n += usize::from(ok);
    }
    if let Some(ck) = &extras.checkpoint
        && let Some(sel) = doc()
            .get_element_by_id(&format!("sdq-{}-ckpt", tab.prefix()))
            .and_then(|s| s.dyn_into::<HtmlSelectElement>().ok())
    {
        let v = DropdownChoice::Title(ck.clone()).to_value();
        sel.set_value(&v);
        if sel.value() != v
            && let Ok(o) = doc().create_element("option")
        {
            let _ = o.set_attribute("value", &v);
            o.set_text_content(Some(ck));
            let _ = sel.append_child(&o);
            sel.set_value(&v);
        }
        n += usize::from(sel.value() == v);
    }
    if let Some((title, args)) = &extras.script {
        n += usize::from(dom::write_script(tab, title, args));
    }
    n
}

/// Switches SD.Next to a tab (Modern nav button, or the Standard tab button by label).
fn switch_to(tab: Tab) {
    let d = doc();
    if let Some(nav) = d.get_element_by_id(&format!("{}_nav", tab.prefix()))
        && let Some(h) = nav.dyn_ref::<HtmlElement>()
    {
        h.click();
        return;
    }
    let label = match tab {
        Tab::Txt2img => "Text",
        Tab::Img2img => "Image",
        Tab::Control => "Control",
    };
    if let Ok(list) = d.query_selector_all("#tabs > .tab-nav > button, #tabs .tab-nav button") {
        for i in 0..list.length() {
            if let Some(b) = list.item(i).and_then(|n| n.dyn_into::<HtmlElement>().ok())
                && b.inner_text().trim() == label
            {
                b.click();
                return;
            }
        }
    }
}
