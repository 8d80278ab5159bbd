//! Small DOM / timing helpers.

use wasm_bindgen::prelude::*;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = performance, js_name = now)]
    pub fn perf_now() -> f64;
    #[wasm_bindgen(js_namespace = console, js_name = log)]
    pub fn console_log(s: &str);
}

/// The window's document (content script, pages).
pub fn document() -> web_sys::Document {
    web_sys::window()
        .and_then(|w| w.document())
        .expect("document")
}

/// Sleeps (timer based; not used for synchronisation with the host).
pub async fn sleep_ms(ms: u32) {
    gloo::timers::future::TimeoutFuture::new(ms).await;
}

/// Whether an element is rendered with a size (visible tab).
pub fn is_shown(el: &web_sys::Element) -> bool {
    let r = el.get_bounding_client_rect();
    r.width() > 0.0 && r.height() > 0.0
}

/// A task time (epoch ms, or ISO) in the browser's locale, short form.
pub fn fmt_time(t: &scheduler_api::WireTime) -> String {
    let d = match t {
        scheduler_api::WireTime::Epoch(ms) => js_sys::Date::new(&JsValue::from_f64(*ms as f64)),
        scheduler_api::WireTime::Iso(s) => js_sys::Date::new(&JsValue::from_str(s)),
    };
    if d.get_time().is_nan() {
        return String::new();
    }
    let opts = js_sys::Object::new();
    for (k, v) in [("dateStyle", "short"), ("timeStyle", "short")] {
        let _ = js_sys::Reflect::set(&opts, &k.into(), &v.into());
    }
    d.to_locale_string("default", &opts).into()
}
