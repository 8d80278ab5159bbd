//! Reading (and writing back) SD.Next's form by element id — the DOM half of capture.
//!
//! SD.Next puts `elem_id` on the Gradio block wrapper: text boxes hold a `textarea`/`input`,
//! sliders an `input[type=number]` (plus a range), dropdowns a text `input` showing the
//! choice, checkboxes an `input[type=checkbox]`, multiselects `.token` elements, images an
//! `img` (or a canvas).

use serde_json::Value;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{Document, Element, HtmlInputElement, HtmlSelectElement, HtmlTextAreaElement};

use super::{Kind, Snapshot, Tab, ids_for};

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

/// Reads one element's raw value by kind; `None` when the element is absent.
pub fn read_raw(id: &str, kind: Kind) -> Option<Value> {
    let el = doc().get_element_by_id(id)?;
    let v = match kind {
        Kind::Text => {
            let i = field_input(&el, "textarea, input")?;
            Value::String(value_of(&i).unwrap_or_default())
        }
        Kind::Int | Kind::Float => {
            let i = field_input(&el, "input[type=number]").or_else(|| field_input(&el, "input"))?;
            Value::String(value_of(&i).unwrap_or_default())
        }
        Kind::Choice | Kind::ResizeMode => {
            let i = field_input(&el, "select, input:not([type=checkbox]), textarea")?;
            Value::String(value_of(&i).unwrap_or_default())
        }
        Kind::Bool => {
            let i = field_input(&el, "input[type=checkbox]")?;
            Value::Bool(i.dyn_ref::<HtmlInputElement>().is_some_and(|c| c.checked()))
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
                    field_input(&el, "select").and_then(|s| s.dyn_into::<HtmlSelectElement>().ok())
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
        Kind::Image | Kind::ImageList => Value::String(image_src(&el)?),
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

/// Turns a `blob:`/`http:` image source into a data URL.
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

/// The img2img input element of the active mode tab (Image, Inpaint, Sketch, Composite,
/// Upload), falling back to the first that holds an image.
fn img2img_source() -> Option<String> {
    let d = doc();
    let order = [
        "img2img_image",
        "img2img_inpaint",
        "img2img_sketch",
        "img2img_composite",
        "img_inpaint_base",
    ];
    let mut active = None;
    if let Some(mode) = d.get_element_by_id("mode_img2img")
        && let Ok(btns) = mode.query_selector_all(".tab-nav button")
    {
        for i in 0..btns.length() {
            if let Some(b) = btns.item(i).and_then(|n| n.dyn_into::<Element>().ok())
                && b.class_list().contains("selected")
            {
                active = Some(i as usize);
            }
        }
    }
    let mut ids: Vec<&str> = Vec::new();
    if let Some(i) = active
        && let Some(id) = [order[0], order[1], order[2], order[3], order[4]].get(i)
    {
        ids.push(id);
    }
    ids.extend(order);
    ids.into_iter()
        .find_map(|id| d.get_element_by_id(id).and_then(|e| image_src(&e)))
}

fn control_image() -> Option<String> {
    let el = doc().get_element_by_id("control_input")?;
    let img = el.query_selector("img[src]").ok().flatten()?;
    let src = img.get_attribute("src")?;
    (src.starts_with("data:image/") || src.starts_with("blob:")).then_some(src)
}

/// Reads every mapped id of `tab` into a snapshot (images as data URLs).
pub async fn read_snapshot(tab: Tab) -> Snapshot {
    let mut snap = Snapshot::new();
    for (id, kind) in ids_for(tab) {
        let raw = if id == "img2img_image" {
            img2img_source().map(Value::String)
        } else if id == "control_input" {
            // Only an uploaded <img>: the Kanvas canvas exists (blank) even without an image.
            control_image().map(Value::String)
        } else {
            read_raw(id, kind)
        };
        let Some(raw) = raw else { continue };
        let raw = match (kind, raw) {
            (Kind::Image | Kind::ImageList, Value::String(src)) => match to_data_url(src).await {
                Some(d) => Value::String(d),
                None => continue,
            },
            (_, v) => v,
        };
        snap.insert(id.to_owned(), raw);
    }
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

/// Writes one value into the page (text, numbers, dropdown text, checkbox) and fires the
/// `input`/`change` events Gradio listens to. Tokens, images and the checkpoint are skipped.
pub fn write_raw(id: &str, kind: Kind, v: &Value) -> bool {
    let Some(el) = doc().get_element_by_id(id) else {
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
        Kind::Text | Kind::Int | Kind::Float | Kind::Choice | Kind::ResizeMode => {
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
