//! Reading (and writing back) SD.Next's form — the DOM half of capture.
//!
//! SD.Next puts `elem_id` on the Gradio block wrapper: text boxes hold a `textarea`/`input`,
//! sliders an `input[type=number]` (plus a range), dropdowns a text `input` showing the
//! choice, checkboxes an `input[type=checkbox]`, radio groups `input[type=radio]`s in choice
//! order, multiselects `.token` elements, images an `img` (or canvases). Blocks without an
//! `elem_id` are found by their label inside a known container. Images that only the page's
//! own state holds (a mask drawn on a canvas, the Kanvas input, a unit's image) come through
//! the page-world [`super::bridge`], with the DOM as the fallback.

use serde_json::{Map, Value, json};
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{Document, Element, HtmlInputElement, HtmlSelectElement, HtmlTextAreaElement};

use super::control::{
    self, CONTROL_TYPE, IP, KANVAS, MAX_UNITS, PROCESSOR_SETTINGS, SCRIPT, UNIT_EXTRAS,
    UNIT_FIELDS, UNIT_IMAGE_PREFIX, UNIT_TYPES,
};
use super::{IMG2IMG_INPUT, IMG2IMG_MODE, Kind, MASK_ID, Snapshot, Tab, bridge, ids_for};

fn doc() -> Document {
    crate::web::util::document()
}

fn field_input(el: &Element, selector: &str) -> Option<Element> {
    if el.matches(selector).unwrap_or(false) {
        return Some(el.clone());
    }
    el.query_selector(selector).ok().flatten()
}

fn value_of(el: &Element) -> Option<String> {
    if let Some(t) = el.dyn_ref::<HtmlTextAreaElement>() {
        return Some(t.value());
    }
    if let Some(i) = el.dyn_ref::<HtmlInputElement>() {
        return Some(i.value());
    }
    if let Some(s) = el.dyn_ref::<HtmlSelectElement>() {
        return Some(s.value());
    }
    None
}

fn in_refine(el: &Element) -> bool {
    el.closest("[id$=\"_refine_accordion\"]")
        .ok()
        .flatten()
        .is_some()
}

/// The element a locator names: `container/id` → `#id` inside `#container`; a plain id →
/// the first `#id` outside any "Refine" accordion.
pub fn find(locator: &str) -> Option<Element> {
    let d = doc();
    if let Some((container, id)) = locator.split_once('/') {
        let c = d.get_element_by_id(container)?;
        return c.query_selector(&format!("[id=\"{id}\"]")).ok().flatten();
    }
    let all = d.query_selector_all(&format!("[id=\"{locator}\"]")).ok()?;
    (0..all.length())
        .filter_map(|i| all.item(i).and_then(|n| n.dyn_into::<Element>().ok()))
        .find(|e| !in_refine(e))
}

/// Reads one element's raw value by kind; `None` when the element is absent.
pub fn read_raw(locator: &str, kind: Kind) -> Option<Value> {
    let el = find(locator)?;
    read_el(&el, kind, Some(locator))
}

fn read_el(el: &Element, kind: Kind, locator: Option<&str>) -> Option<Value> {
    let v = match kind {
        Kind::Text => {
            let i = field_input(el, "textarea, input")?;
            Value::String(value_of(&i).unwrap_or_default())
        }
        Kind::Int | Kind::Float => {
            let i = field_input(el, "input[type=number]").or_else(|| field_input(el, "input"))?;
            Value::String(value_of(&i).unwrap_or_default())
        }
        Kind::Choice | Kind::ResizeMode | Kind::Index(_) => {
            let i = field_input(el, "select, input:not([type=checkbox]), textarea")?;
            Value::String(value_of(&i).unwrap_or_default())
        }
        Kind::PageIndex => {
            let i = field_input(el, "input:not([type=checkbox])")?;
            let shown = value_of(&i).unwrap_or_default();
            let choices = locator.and_then(|l| bridge::choices(l.rsplit('/').next()?))?;
            json!({"value": shown, "choices": choices})
        }
        Kind::Color => {
            let i = field_input(el, "input[type=color]")?;
            Value::String(value_of(&i).unwrap_or_default())
        }
        Kind::Bool => {
            let i = field_input(el, "input[type=checkbox]")?;
            Value::Bool(i.dyn_ref::<HtmlInputElement>().is_some_and(|c| c.checked()))
        }
        Kind::Radio | Kind::RadioBool => {
            let list = el.query_selector_all("input[type=radio]").ok()?;
            let idx = (0..list.length()).find(|&i| {
                list.item(i)
                    .and_then(|n| n.dyn_into::<HtmlInputElement>().ok())
                    .is_some_and(|r| r.checked())
            })?;
            Value::from(idx)
        }
        Kind::Tokens => {
            let list = el.query_selector_all(".token").ok()?;
            let mut out = Vec::new();
            for i in 0..list.length() {
                if let Some(tok) = list.item(i).and_then(|n| n.dyn_into::<Element>().ok()) {
                    let text = tok
                        .query_selector("span")
                        .ok()
                        .flatten()
                        .and_then(|s| s.text_content())
                        .or_else(|| tok.text_content())
                        .unwrap_or_default();
                    let text = text.trim().trim_end_matches('×').trim().to_owned();
                    if !text.is_empty() {
                        out.push(Value::String(text));
                    }
                }
            }
            if out.is_empty()
                && let Some(s) =
                    field_input(el, "select").and_then(|s| s.dyn_into::<HtmlSelectElement>().ok())
            {
                let opts = s.selected_options();
                for i in 0..opts.length() {
                    if let Some(o) = opts.item(i) {
                        out.push(Value::String(o.text_content().unwrap_or_default()));
                    }
                }
            }
            Value::Array(out)
        }
        Kind::Image | Kind::ImageList => Value::String(image_src(el)?),
    };
    Some(v)
}

fn image_src(el: &Element) -> Option<String> {
    if let Some(img) = field_input(el, "img") {
        let src = img.get_attribute("src").unwrap_or_default();
        if !src.is_empty() {
            return Some(src);
        }
    }
    let canvas = field_input(el, "canvas")?
        .dyn_into::<web_sys::HtmlCanvasElement>()
        .ok()?;
    if canvas.width() == 0 || canvas.height() == 0 {
        return None;
    }
    canvas.to_data_url().ok()
}

/// Turns a `blob:`/`http:`/`file=` image source into a data URL.
async fn to_data_url(src: String) -> Option<String> {
    if src.starts_with("data:") {
        return Some(src);
    }
    let win = web_sys::window()?;
    let resp: web_sys::Response = JsFuture::from(win.fetch_with_str(&src))
        .await
        .ok()?
        .dyn_into()
        .ok()?;
    if !resp.ok() {
        return None;
    }
    let blob: web_sys::Blob = JsFuture::from(resp.blob().ok()?)
        .await
        .ok()?
        .dyn_into()
        .ok()?;
    let reader = web_sys::FileReader::new().ok()?;
    let p = js_sys::Promise::new(&mut |resolve, reject| {
        let r2 = reader.clone();
        let onload = wasm_bindgen::closure::Closure::once_into_js(move || {
            let _ = resolve.call1(
                &wasm_bindgen::JsValue::NULL,
                &r2.result().unwrap_or_default(),
            );
        });
        let onerr = wasm_bindgen::closure::Closure::once_into_js(move || {
            let _ = reject.call0(&wasm_bindgen::JsValue::NULL);
        });
        reader.set_onload(Some(onload.unchecked_ref()));
        reader.set_onerror(Some(onerr.unchecked_ref()));
    });
    reader.read_as_data_url(&blob).ok()?;
    JsFuture::from(p).await.ok()?.as_string()
}

/// A Gradio image/file value as a data URL: a data URL as is, a `{data}` / `{name}` file
/// object through its data or the server's `file=` route.
async fn gradio_image(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if s.starts_with("data:") => Some(s.clone()),
        Value::String(s) if s.starts_with("blob:") || s.starts_with("http") => {
            to_data_url(s.clone()).await
        }
        Value::Object(o) => {
            if let Some(d) = o.get("data").and_then(Value::as_str)
                && d.starts_with("data:")
            {
                return Some(d.to_owned());
            }
            let name = o.get("name").and_then(Value::as_str)?;
            to_data_url(format!("file={name}")).await
        }
        _ => None,
    }
}

/// The index of the selected button of the first tab bar inside `container`.
fn selected_tab(container: &Element) -> Option<usize> {
    let btns = container
        .query_selector_all(":scope > .tab-nav > button, .tab-nav button")
        .ok()?;
    (0..btns.length())
        .find(|&i| {
            btns.item(i)
                .and_then(|n| n.dyn_into::<Element>().ok())
                .is_some_and(|b| b.class_list().contains("selected"))
        })
        .map(|i| i as usize)
}

/// The label text of a Gradio block (slider, dropdown, number, textbox, checkbox, radio).
fn block_label(block: &Element) -> Option<String> {
    for sel in ["[data-testid=\"block-info\"]", "label > span", "span"] {
        if let Some(s) = block.query_selector(sel).ok().flatten() {
            let t = s.text_content().unwrap_or_default().trim().to_owned();
            if !t.is_empty() {
                return Some(t);
            }
        }
    }
    None
}

/// The first Gradio block inside `scope` whose label is `label`.
fn block_by_label(scope: &Element, label: &str) -> Option<Element> {
    let blocks = scope.query_selector_all(".block").ok()?;
    (0..blocks.length())
        .filter_map(|i| blocks.item(i).and_then(|n| n.dyn_into::<Element>().ok()))
        .find(|b| block_label(b).as_deref() == Some(label))
}

/// The img2img mode tab (0 Image, 1 Inpaint, 2 Sketch, 3 Composite, 4 Upload, 5 Batch).
fn img2img_mode() -> usize {
    doc()
        .get_element_by_id("mode_img2img")
        .and_then(|m| selected_tab(&m))
        .unwrap_or(0)
}

/// The input of the selected img2img mode: `{image, mask?}`.
async fn img2img_input(mode: usize) -> Option<Value> {
    let id = match mode {
        0 => "img2img_image",
        1 => "img2img_inpaint",
        2 => "img2img_sketch",
        3 => "img2img_composite",
        _ => return None,
    };
    // The page's own value: an image, or `{image, mask}` for the sketch tools.
    if let Some(v) = bridge::get(id) {
        let (image, mask) = match &v {
            Value::Object(o) => (o.get("image").cloned(), o.get("mask").cloned()),
            other => (Some(other.clone()), None),
        };
        let image = match image {
            Some(i) => gradio_image(&i).await,
            None => None,
        };
        let mask = match (mode, mask) {
            (1, Some(m)) => gradio_image(&m).await,
            _ => None,
        };
        if let Some(image) = image {
            let mut o = Map::new();
            o.insert("image".into(), Value::String(image));
            if let Some(m) = mask {
                o.insert("mask".into(), Value::String(m));
            }
            return Some(Value::Object(o));
        }
    }
    // DOM fallback: the shown image, and the mask canvas of the sketch tool.
    let el = doc().get_element_by_id(id)?;
    let image = to_data_url(image_src(&el)?).await?;
    let mut o = Map::new();
    o.insert("image".into(), Value::String(image));
    if mode == 1
        && let Some(c) = el
            .query_selector("canvas[key=\"mask\"]")
            .ok()
            .flatten()
            .and_then(|c| c.dyn_into::<web_sys::HtmlCanvasElement>().ok())
        && let Ok(m) = c.to_data_url()
    {
        o.insert("mask".into(), Value::String(m));
    }
    Some(Value::Object(o))
}

async fn read_img2img(snap: &mut Snapshot) {
    let mode = img2img_mode();
    snap.insert(IMG2IMG_MODE.into(), Value::from(mode));
    if let Some(v) = img2img_input(mode).await {
        snap.insert(IMG2IMG_INPUT.into(), v);
    }
    if mode == 4 {
        for id in ["img_inpaint_base", MASK_ID] {
            let v = match bridge::get(id) {
                Some(v) => gradio_image(&v).await,
                None => match doc().get_element_by_id(id).and_then(|e| image_src(&e)) {
                    Some(s) => to_data_url(s).await,
                    None => None,
                },
            };
            if let Some(v) = v {
                snap.insert(id.into(), Value::String(v));
            }
        }
    }
}

/// The Control tab: Kanvas input, the selected type's units and shared controls, the
/// processor settings.
async fn read_control(snap: &mut Snapshot) {
    // The input: the page's Kanvas accessor, else an uploaded <img> in the input area.
    let kanvas = bridge::call("kanvas", Value::Null);
    let mut input = Map::new();
    if let Some(k) = &kanvas {
        for key in ["image", "mask"] {
            if let Some(v) = k.get(key)
                && let Some(url) = gradio_image(v).await
            {
                input.insert(key.into(), Value::String(url));
            }
        }
    } else if let Some(img) = doc()
        .query_selector("#control_input img[src], #control-tab-input img[src]")
        .ok()
        .flatten()
        && let Some(src) = img.get_attribute("src")
        && let Some(url) = to_data_url(src).await
    {
        input.insert("image".into(), Value::String(url));
    }
    if !input.is_empty() {
        snap.insert(KANVAS.into(), Value::Object(input));
    }
    let d = doc();
    let Some(tabs) = d.get_element_by_id("control-tabs") else {
        return;
    };
    let ty = selected_tab(&tabs).unwrap_or(0);
    snap.insert(CONTROL_TYPE.into(), Value::from(ty));
    let items = tabs.query_selector_all(":scope > .tabitem").ok();
    let Some(container) = items
        .and_then(|l| l.item(ty as u32))
        .and_then(|n| n.dyn_into::<Element>().ok())
    else {
        return;
    };
    for k in 0..MAX_UNITS {
        for fld in UNIT_FIELDS {
            let id = format!("control_unit-{k}-{}", fld.suffix);
            if let Some(el) = container
                .query_selector(&format!("[id=\"{id}\"]"))
                .ok()
                .flatten()
                && let Some(v) = read_el(&el, fld.kind, None)
            {
                snap.insert(control::unit_key(k, fld.suffix), v);
            }
        }
        let img_id = format!("{}_unit-{k}-override", UNIT_IMAGE_PREFIX[ty.min(4)]);
        let img = match bridge::get(&img_id) {
            Some(v) => gradio_image(&v).await,
            None => match d.get_element_by_id(&img_id).and_then(|e| image_src(&e)) {
                Some(s) => to_data_url(s).await,
                None => None,
            },
        };
        if let Some(i) = img {
            snap.insert(control::unit_key(k, "image"), Value::String(i));
        }
    }
    let unit_type = UNIT_TYPES.get(ty).copied().unwrap_or("controlnet");
    for (t, label, _, kind) in UNIT_EXTRAS {
        if *t == unit_type
            && let Some(b) = block_by_label(&container, label)
            && let Some(v) = read_el(&b, *kind, None)
        {
            snap.insert(control::extra_key(label), v);
        }
    }
    // Processor settings: one accordion per processor under "Control settings".
    if let Ok(accs) = d.query_selector_all(".processor-settings") {
        for i in 0..accs.length() {
            let Some(acc) = accs.item(i).and_then(|n| n.dyn_into::<Element>().ok()) else {
                continue;
            };
            let title = acc
                .query_selector(".label-wrap > span")
                .ok()
                .flatten()
                .and_then(|s| s.text_content())
                .unwrap_or_default()
                .trim()
                .to_owned();
            for (a, label, _, _, kind) in PROCESSOR_SETTINGS {
                if *a == title
                    && let Some(b) = block_by_label(&acc, label)
                    && let Some(v) = read_el(&b, *kind, None)
                {
                    snap.insert(control::proc_key(a, label), v);
                }
            }
        }
    }
}

/// The selected script and the IP adapters (every tab), through the bridge; their image
/// arguments become data URLs.
async fn read_scripts(tab: Tab, snap: &mut Snapshot) {
    let p = tab.prefix();
    if let Some(mut s) = bridge::call("script", json!({ "tab": p }))
        && s.get("title").and_then(Value::as_str).is_some()
    {
        // Image arguments (the Face script's gallery, a script's image or files) go as data
        // URLs: SD.Next's scripts decode base64 strings; the page's own values are server
        // file objects the API cannot resolve.
        if let Some(args) = s.get_mut("args").and_then(Value::as_array_mut) {
            for a in args.iter_mut() {
                let ty = a.get("type").and_then(Value::as_str).unwrap_or_default();
                if !matches!(ty, "gallery" | "image" | "file") {
                    continue;
                }
                let v = a.get("value").cloned().unwrap_or(Value::Null);
                a["value"] = match (ty, &v) {
                    (_, Value::Null) => Value::Null,
                    ("image", _) => gradio_image(&v).await.map_or(Value::Null, Value::String),
                    (_, Value::Array(items)) => {
                        let mut urls = Vec::new();
                        for it in items {
                            // A gallery item is `[file, caption]` or the file itself.
                            let f = it.as_array().and_then(|x| x.first()).unwrap_or(it);
                            if let Some(u) = gradio_image(f).await {
                                urls.push(Value::String(u));
                            }
                        }
                        Value::Array(urls)
                    }
                    _ => gradio_image(&v)
                        .await
                        .map_or(Value::Array(vec![]), |u| json!([u])),
                };
            }
        }
        snap.insert(SCRIPT.into(), s);
    }
    if let Some(mut g) = bridge::call(
        "group",
        json!({"tab": p, "id": format!("{p}_script_ip_adapters")}),
    ) {
        if let Some(args) = g.get_mut("args").and_then(Value::as_array_mut) {
            for a in args.iter_mut() {
                let is_files = a.get("type").and_then(Value::as_str) == Some("file");
                if !is_files {
                    continue;
                }
                let mut urls = Vec::new();
                if let Some(files) = a.get("value").and_then(Value::as_array) {
                    for f in files {
                        if let Some(u) = gradio_image(f).await {
                            urls.push(Value::String(u));
                        }
                    }
                } else if let Some(f) = a.get("value").filter(|v| v.is_object())
                    && let Some(u) = gradio_image(f).await
                {
                    urls.push(Value::String(u));
                }
                a["value"] = Value::Array(urls);
            }
        }
        snap.insert(IP.into(), g);
    }
}

/// Reads every mapped field of `tab` into a snapshot (images as data URLs).
pub async fn read_snapshot(tab: Tab) -> Snapshot {
    let mut snap = Snapshot::new();
    for (id, kind) in ids_for(tab) {
        if id.starts_with('@') || matches!(kind, Kind::Image | Kind::ImageList) {
            continue;
        }
        if let Some(raw) = read_raw(id, kind) {
            snap.insert(id.to_owned(), raw);
        }
    }
    match tab {
        Tab::Img2img => read_img2img(&mut snap).await,
        Tab::Control => read_control(&mut snap).await,
        Tab::Txt2img => {}
    }
    read_scripts(tab, &mut snap).await;
    snap
}

fn fire(el: &Element, name: &str) {
    if let Ok(ev) = web_sys::Event::new_with_event_init_dict(name, &{
        let i = web_sys::EventInit::new();
        i.set_bubbles(true);
        i
    }) {
        let _ = el.dispatch_event(&ev);
    }
}

/// Writes one value into the page and makes Gradio take it: through the page's own
/// component state when the bridge can reach it (dropdowns, radios, multiselects need it),
/// else by setting the inputs and firing the `input`/`change` events Gradio listens to.
pub fn write_raw(locator: &str, kind: Kind, v: &Value) -> bool {
    let plain_id = !locator.contains('/') && !locator.starts_with('@');
    if plain_id {
        let page_value = match (kind, v) {
            (Kind::Radio | Kind::RadioBool, Value::Number(n)) => {
                bridge::choices(locator).and_then(|c| c.get(n.as_u64()? as usize).cloned())
            }
            (Kind::Int | Kind::Float, Value::String(s)) => s
                .parse::<f64>()
                .ok()
                .and_then(|x| serde_json::Number::from_f64(x).map(Value::Number)),
            _ => Some(v.clone()),
        };
        if let Some(pv) = page_value
            && bridge::set(locator, &pv)
        {
            return true;
        }
    }
    let Some(el) = find(locator) else {
        return false;
    };
    match kind {
        Kind::Bool => {
            let Some(i) = field_input(&el, "input[type=checkbox]") else {
                return false;
            };
            let want = v.as_bool().unwrap_or(false);
            if let Some(c) = i.dyn_ref::<HtmlInputElement>()
                && c.checked() != want
            {
                c.click();
            }
            true
        }
        Kind::Radio | Kind::RadioBool => {
            let Some(n) = v.as_u64() else { return false };
            let Ok(list) = el.query_selector_all("input[type=radio]") else {
                return false;
            };
            match list
                .item(n as u32)
                .and_then(|x| x.dyn_into::<HtmlInputElement>().ok())
            {
                Some(r) => {
                    r.click();
                    true
                }
                None => false,
            }
        }
        Kind::Text
        | Kind::Int
        | Kind::Float
        | Kind::Choice
        | Kind::ResizeMode
        | Kind::Index(_)
        | Kind::Color => {
            let s = v
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| v.to_string());
            let Ok(list) = el.query_selector_all("textarea, input:not([type=checkbox]), select")
            else {
                return false;
            };
            let mut any = false;
            for n in 0..list.length() {
                let Some(e) = list.item(n).and_then(|x| x.dyn_into::<Element>().ok()) else {
                    continue;
                };
                if let Some(t) = e.dyn_ref::<HtmlTextAreaElement>() {
                    t.set_value(&s);
                } else if let Some(i) = e.dyn_ref::<HtmlInputElement>() {
                    i.set_value(&s);
                } else if let Some(sel) = e.dyn_ref::<HtmlSelectElement>() {
                    sel.set_value(&s);
                }
                fire(&e, "input");
                fire(&e, "change");
                any = true;
                if matches!(kind, Kind::Text) {
                    break;
                }
            }
            if el.matches("textarea, input, select").unwrap_or(false) {
                if let Some(t) = el.dyn_ref::<HtmlTextAreaElement>() {
                    t.set_value(&s);
                } else if let Some(i) = el.dyn_ref::<HtmlInputElement>() {
                    i.set_value(&s);
                }
                fire(&el, "input");
                any = true;
            }
            any
        }
        _ => false,
    }
}

/// "Send to": puts an image into a Gradio image component through the page's own state.
pub fn write_image(elem_id: &str, data_url: &str) -> bool {
    bridge::set(elem_id, &Value::String(data_url.to_owned()))
}

/// "Send to": selects a script by title, then sets its arguments by label.
pub fn write_script(tab: Tab, title: &str, args: &[super::LabelledArg]) -> bool {
    let p = tab.prefix();
    if !bridge::set(
        &format!("{p}_script_list"),
        &Value::String(title.to_owned()),
    ) {
        return false;
    }
    let _ = bridge::call(
        "set_script_args",
        json!({"tab": p, "title": title, "args": args.iter().map(|(l, v)| json!({"label": l, "value": v})).collect::<Vec<_>>()}),
    );
    true
}
